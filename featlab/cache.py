"""The former home of folder extraction, kept so that ``fl.cache.*`` keeps working.

The job that extracts a folder is :mod:`featlab.pipeline` (``fl.extract_folder``); the feature
file, its writer and its readers are :mod:`featlab.store` (``fl.load_features``,
``fl.open_features``). New code should use those names.
"""
from .extractor import pool
from .loader import IMAGE_SUFFIXES, list_images
from .pipeline import extract_folder
from .store import FeatureFile, FileInUseError, load_features, load_skipped, open_features

__all__ = ["IMAGE_SUFFIXES", "FileInUseError", "list_images", "pool", "extract_folder", "load_features",
           "load_skipped", "open_features", "FeatureFile"]
