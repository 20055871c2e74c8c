"""augkit's default plugins, registered through the ``augkit`` entry-point group."""
