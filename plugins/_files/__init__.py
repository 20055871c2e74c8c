"""What the file-based data sources share: discovery, privacy-safe keys, hashing, labels, images.

Not a plugin (it registers nothing): ``kaggle-chest-xray``, ``image-folder``, ``dicom`` and
``nifti`` import it. Rules every one of them follows:

* hidden files and folders (any name starting with ``.``, e.g. ``.DS_Store``, ``._x.jpeg``)
  and ``__MACOSX`` folders are ignored silently, as are files with other extensions;
* a sample's ``key`` is ``"<class>/<12 hex of sha256(relative path)>"`` unless the user
  sets ``reveal_file_names``, because file and folder names often carry patient ids;
* a ``load`` callable is a ``functools.partial`` of a module-level function (picklable),
  and its exceptions never quote a path.
"""

from augkit_plugins._files.discovery import (
    FileSourceOptions,
    content_fingerprint,
    existing_dir,
    is_hidden,
    reject,
    relative,
    sample_key,
    walk_files,
)
from augkit_plugins._files.images import (
    IMAGE_SUFFIXES,
    MIN_SIDE,
    check_regular,
    check_size,
    clean_message,
    read_image,
)
from augkit_plugins._files.labels import (
    LabelledFileOptions,
    LabelTable,
    check_patient_regex,
    label_files,
    patient_from,
    resolve_classes,
    top_folder,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "MIN_SIDE",
    "FileSourceOptions",
    "LabelTable",
    "LabelledFileOptions",
    "check_patient_regex",
    "check_size",
    "clean_message",
    "content_fingerprint",
    "existing_dir",
    "is_hidden",
    "label_files",
    "patient_from",
    "read_image",
    "check_regular",
    "reject",
    "relative",
    "resolve_classes",
    "sample_key",
    "top_folder",
    "walk_files",
]
