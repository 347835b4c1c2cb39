"""Classification datasets on disk: `<root>/{train,val,test}/<class folder>/*.png` + data.yaml.

Class folder names are %XX-encoded class names (src/data/datasets/naming.py); data.yaml's
`names` (list or {index: name}) fixes the class order when present, else folders sort.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import unquote

import numpy as np
import torch
import yaml
from PIL import Image
from torch.utils.data import Dataset

from src.errors import DatasetError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class ClassifySplits:
    root: Path
    class_names: list[str]
    samples: dict[str, list[tuple[Path, int]]]   # split -> [(image, class index)]

    def counts(self, split: str) -> list[int]:
        counts = [0] * len(self.class_names)
        for _, label in self.samples.get(split, []):
            counts[label] += 1
        return counts


def load_splits(root: Path) -> ClassifySplits:
    """Index train/val/test image folders; refuses a root without train/ or val/ images."""
    root = Path(root)
    if root.is_file() and root.suffix in (".yaml", ".yml"):
        root = root.parent
    if not (root / "train").is_dir():
        raise DatasetError("not a classification dataset: no train/ folder", path=root,
                           hint="build one with `dataset build NAME --task classify` or "
                                "`--task crops`")
    names = _class_names(root)
    index = {name: i for i, name in enumerate(names)}
    samples = {}
    for split in ("train", "val", "test"):
        split_dir = root / split
        items = []
        if split_dir.is_dir():
            for folder in sorted(p for p in split_dir.iterdir() if p.is_dir()):
                name = unquote(folder.name)
                if name not in index:
                    raise DatasetError(f"class folder '{folder.name}' is not in data.yaml names",
                                       path=folder, hint="rebuild the dataset")
                items += [(img, index[name]) for img in sorted(folder.iterdir())
                          if img.suffix.lower() in IMAGE_SUFFIXES]
        samples[split] = items
    for split in ("train", "val"):
        if not samples[split]:
            raise DatasetError(f"the {split} split has no images", path=root / split,
                               hint="add annotated frames or change the split ratios")
    return ClassifySplits(root, names, samples)


def _class_names(root: Path) -> list[str]:
    data_yaml = root / "data.yaml"
    if data_yaml.is_file():
        names = (yaml.safe_load(data_yaml.read_text(encoding="utf-8")) or {}).get("names")
        if isinstance(names, dict):
            return [str(names[k]) for k in sorted(names)]
        if isinstance(names, list) and names:
            return [str(n) for n in names]
    folders = {unquote(p.name) for split in ("train", "val", "test") if (root / split).is_dir()
               for p in (root / split).iterdir() if p.is_dir()}
    return sorted(folders)


class ImageClassDataset(Dataset):
    """(image tensor, label). With `transform` (a timm transform of a PIL image: the
    backbone's own normalisation, and augmentation for training) that transform is applied;
    without, the image is resized to imgsz², ImageNet-normalised, and flipped when `train`."""

    def __init__(self, items: list[tuple[Path, int]], imgsz: int, train: bool,
                 seed: int = 0, transform: Callable | None = None) -> None:
        self.items = items
        self.imgsz = imgsz
        self.train = train
        self.seed = seed
        self.transform = transform
        self.mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
        self.std = torch.tensor(IMAGENET_STD)[:, None, None]

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labels(self) -> list[int]:
        return [label for _, label in self.items]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.items[i]
        if self.transform is not None:
            return self.transform(self.open(path)), label
        return self.load(path, flip=self.train and bool(torch.rand(1).item() < 0.5)), label

    @staticmethod
    def open(path: Path) -> Image.Image:
        """The image file as RGB; DatasetError naming the file when it cannot be read."""
        try:
            with Image.open(path) as im:
                return im.convert("RGB")
        except OSError as exc:
            raise DatasetError(f"cannot read image ({exc})", path=path,
                               hint="rebuild the dataset") from exc

    def load(self, path: Path, flip: bool = False) -> torch.Tensor:
        im = self.open(path).resize((self.imgsz, self.imgsz), Image.BILINEAR)
        array = np.asarray(im, dtype=np.float32) / 255.0
        tensor = torch.from_numpy(array).permute(2, 0, 1)
        if flip:
            tensor = tensor.flip(2)
        return (tensor - self.mean) / self.std
