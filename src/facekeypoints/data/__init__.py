"""Datasets: the Udacity facial keypoints layout, 300-W ``.pts`` folders, and fetching."""

from .udacity import Sample, UdacityDataset, train_val_split

__all__ = ["Sample", "UdacityDataset", "train_val_split"]
