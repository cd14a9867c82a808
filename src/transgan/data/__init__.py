"""Image data sets for TransGAN, chosen by a spec string, and their seeded loaders.

Items are unlabelled float32 tensors (channels, resolution, resolution) in [-1, 1]; sets with
classes (digits, cifar10, stl10-train, folders of class subfolders, prepared zips) pair them
with labels through ``dataset.labelled()``.

Public names load their modules on first use; the spec names (``data.specs``) are free of
torch, so the command line can check them without loading it.
"""

from __future__ import annotations

from transgan.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "transgan.data.base": ("ImageDataset", "colour_name"),
    "transgan.data.build": ("build_dataset",),
    "transgan.data.digits": ("load_digits_split",),
    "transgan.data.loader": ("default_num_workers",),
    "transgan.data.specs": ("DATA_SPECS_HELP", "is_digits_spec", "may_download"),
    "transgan.data.torchvision_sets": ("default_data_root",),
    "transgan.data.zipped": ("PreparedZipDataset",),
})
