"""Image data sets for TransGAN, chosen by a spec string, and their seeded loaders.

Items are unlabelled float32 tensors (channels, resolution, resolution) in [-1, 1]; sets with
classes (digits, cifar10, stl10-train, folders of class subfolders, prepared zips) pair them
with labels through ``dataset.labelled()``.

Public names load their modules on first use; the spec names (``data.specs``) are free of
torch, so the command line can check them without loading it.
"""

from __future__ import annotations

from transgan.lazy import lazy_attributes

# Public name -> module that defines it.
_EXPORTS = {
    "build_dataset": "transgan.data.build",
    "colour_name": "transgan.data.base",
    "DATA_SPECS_HELP": "transgan.data.specs",
    "DataError": "transgan.errors",
    "default_data_root": "transgan.data.torchvision_sets",
    "default_num_workers": "transgan.data.loader",
    "IMAGE_EXTENSIONS": "transgan.data.images",
    "ImageDataset": "transgan.data.base",
    "is_digits_spec": "transgan.data.specs",
    "LabelledDataset": "transgan.data.base",
    "load_digits_split": "transgan.data.digits",
    "may_download": "transgan.data.specs",
    "PreparedZipDataset": "transgan.data.zipped",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_attributes(__name__, _EXPORTS)
