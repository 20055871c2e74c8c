"""One rank of ``check_distributed``: ``python -m augkit.testing JOB`` (the check starts these processes)."""

import sys

from augkit.testing.distributed import _distributed_rank

if __name__ == "__main__":
    _distributed_rank(sys.argv[1])
