"""Views of the kernel model: ``sysfs_tree`` (``SysfsView``, paths over the tree of ``sysfs_nodes``),
``fuse`` (the FUSE adapter of ``SysfsView``; needs libfuse) and ``netlink`` (the evidence
endpoint). Views read the model and call its store handlers; they never import the fault layer."""
