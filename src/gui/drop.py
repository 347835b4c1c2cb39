"""Dropping a video file, an image folder or an image file on the window imports it (an
image file imports the folder it is in, as File › Import image folder… would)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from PyQt6.QtCore import QEvent, QObject

from src.data.video import IMAGE_EXTENSIONS


def dropped_paths(mime) -> list[Path]:
    """Local files and folders in a drop's mime data."""
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()] \
        if mime.hasUrls() else []


def media_to_import(path: Path) -> Path:
    """What a dropped path imports: a folder or a video as is, an image file's folder."""
    return path.parent if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS else path


class DropImporter(QObject):
    """An event filter on the window: accepts drags of local files and imports on drop."""

    def __init__(self, target: QObject, import_media: Callable[[Path], object]) -> None:
        super().__init__(target)
        self.import_media = import_media
        target.setAcceptDrops(True)
        target.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            if dropped_paths(event.mimeData()):
                event.acceptProposedAction()
                return True
        elif kind == QEvent.Type.Drop:
            paths = dropped_paths(event.mimeData())
            if paths:
                event.acceptProposedAction()
                for path in dict.fromkeys(media_to_import(p) for p in paths):
                    self.import_media(path)
                return True
        return False
