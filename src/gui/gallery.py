"""The gallery of captured frames: a QListView over a paged model; thumbnails load lazily.

The model fetches frame summaries from the store a page at a time (`fetchMore`) with the
filters applied in SQL. A thumbnail is asked for only when the view paints its row; the
requests are collected and, a moment later, only those still visible are decoded, so a fast
scroll through 10,000 frames decodes what ends up on screen and nothing else.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from PyQt6.QtCore import (QAbstractListModel, QEvent, QModelIndex, QPointF, QSize, Qt, QTimer,
                          pyqtSignal, pyqtSlot)
from PyQt6.QtGui import QColor, QFontMetrics, QImage, QPainter, QPen, QPixmap, QPolygonF
from PyQt6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QLabel, QListView,
                             QPushButton, QVBoxLayout, QWidget)

from src.db import dataset_exclusions
from src.db import sources as source_repo
from src.db.frames import FrameSummary, filter_counts, list_frame_summaries
from src.db.records import Frame
from src.gui import dialogs
from src.gui.gallery_exclusion import EXCLUDED_TEXT, ExclusionMenu, mark_excluded
from src.gui.guard import reports_errors
from src.gui.player_bar import format_time
from src.gui.session import ProjectSession
from src.gui.thumbnails import THUMB_SIZE, ThumbnailCache, ThumbnailLoader

PAGE = 200
PIXMAP_CACHE = 800          # thumbnails kept in memory (about 50 KB each)
LABEL_LINES = 3             # source name; frame number and time; shapes and classes
FrameRole = Qt.ItemDataRole.UserRole + 1
SUGGESTED = "suggested"     # the filter that lists Suggest frames' ranking, best first


@dataclass
class SuggestedFrame:
    """A frame of Suggest frames' ranking as the gallery shows it."""
    frame_id: int
    rank: int                  # 1 = label this one first
    score: float
    details: str               # what made it uncertain, for the tooltip


def draw_shapes(image: QImage, frame: Frame, shapes: list[tuple[str, object, str]]) -> QPixmap:
    """The thumbnail with each (kind, geometry, colour) shape drawn small on it."""
    pixmap = QPixmap.fromImage(image)
    if not shapes or not frame.width:
        return pixmap
    scale = pixmap.width() / frame.width
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    for kind, geometry, color in shapes:
        painter.setPen(QPen(QColor(color), 1.5))
        if kind == "box":
            x1, y1, x2, y2 = (v * scale for v in geometry)
            painter.drawPolygon(QPolygonF([QPointF(x1, y1), QPointF(x2, y1),
                                           QPointF(x2, y2), QPointF(x1, y2)]))
        elif kind == "polygon":
            painter.drawPolygon(QPolygonF([QPointF(x * scale, y * scale) for x, y in geometry]))
    painter.end()
    return pixmap


class GalleryModel(QAbstractListModel):
    def __init__(self, session: ProjectSession, loader: ThumbnailLoader, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.loader = loader
        self.rows: list[FrameSummary] = []
        self.row_of: dict[int, int] = {}
        self.class_filter: int | None = None
        self.unannotated_only = False
        self.suggested_only = False
        self.suggestions: dict[int, SuggestedFrame] = {}         # frame id -> its rank
        self._exhausted = False
        self._images: OrderedDict[int, QImage] = OrderedDict()     # thumbnails as decoded
        self._pixmaps: dict[int, QPixmap] = {}                      # ... with shapes drawn
        self.source_names: dict[int, str] = {}
        self.elide: Callable[[str], str] = lambda text: text
        self._loading: set[int] = set()
        self._wanted: set[int] = set()
        self.is_visible: Callable[[int], bool] = lambda row: True
        self.excluded: set[int] = set()         # frames marked "exclude from datasets"
        self._placeholder = QPixmap(THUMB_SIZE, THUMB_SIZE * 3 // 4)
        self._placeholder.fill(QColor("#3a3a3a"))
        self._dispatch_timer = QTimer(self)
        self._dispatch_timer.setSingleShot(True)
        self._dispatch_timer.setInterval(15)
        self._dispatch_timer.timeout.connect(self._dispatch_wanted)
        loader.loaded.connect(self._on_loader_loaded)
        self.reload()

    # ---- paging -------------------------------------------------------------------------
    def _fetch(self, limit: int, offset: int) -> list[FrameSummary]:
        if self.suggested_only:
            return self._fetch_suggested(limit, offset)
        return self.session.frame_summaries(class_id=self.class_filter,
                                            unannotated_only=self.unannotated_only,
                                            limit=limit, offset=offset)

    def _fetch_suggested(self, limit: int, offset: int) -> list[FrameSummary]:
        ranked = sorted(self.suggestions.values(), key=lambda s: s.rank)
        ids = [s.frame_id for s in ranked][offset:offset + limit if limit >= 0 else None]
        found = {s.frame.id: s for s in list_frame_summaries(self.session.conn, frame_ids=ids)}
        return [found[i] for i in ids if i in found]

    def reload(self) -> None:
        """Start again from the first page (filters changed, frames added or deleted)."""
        self.beginResetModel()
        self.source_names = {s.id: s.name for s in source_repo.list_sources(self.session.conn)}
        self.excluded = dataset_exclusions.excluded_frame_ids(self.session.conn)
        self._pixmaps.clear()
        self.rows, self.row_of, self._exhausted = [], {}, False
        self._append(self._fetch(PAGE, 0))
        self.endResetModel()

    def refresh(self) -> None:
        """Re-read the rows already loaded; keeps scroll and selection when only counts changed."""
        fresh = self._fetch(max(len(self.rows), PAGE), 0)
        if [s.frame.id for s in fresh] != [s.frame.id for s in self.rows]:
            self.reload()
            return
        self.rows = fresh
        self._pixmaps.clear()           # shapes may have changed: redraw them on the thumbnails
        if self.rows:
            self.dataChanged.emit(self.index(0), self.index(len(self.rows) - 1))

    def _append(self, page: list[FrameSummary]) -> None:
        for summary in page:
            self.row_of[summary.frame.id] = len(self.rows)
            self.rows.append(summary)
        self._exhausted = len(page) < PAGE

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def canFetchMore(self, parent: QModelIndex = QModelIndex()) -> bool:
        return not parent.isValid() and not self._exhausted

    def fetchMore(self, parent: QModelIndex = QModelIndex()) -> None:
        page = self._fetch(PAGE, len(self.rows))
        if page:
            self.beginInsertRows(QModelIndex(), len(self.rows), len(self.rows) + len(page) - 1)
            self._append(page)
            self.endInsertRows()
        else:
            self._exhausted = True

    def set_filter(self, class_id: int | None, unannotated_only: bool,
                   suggested_only: bool = False) -> None:
        self.class_filter, self.unannotated_only = class_id, unannotated_only
        self.suggested_only = suggested_only
        self.reload()

    def find_row(self, frame_id: int) -> int | None:
        """The row of a frame, loading more pages until it is found (or all are loaded)."""
        while frame_id not in self.row_of and self.canFetchMore():
            self.fetchMore()
        return self.row_of.get(frame_id)

    # ---- data ---------------------------------------------------------------------------
    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        summary = self.rows[index.row()]
        frame = summary.frame
        source = self.source_names.get(frame.source_id, f"source {frame.source_id}")
        suggested = self.suggestions.get(frame.id)
        if role == Qt.ItemDataRole.DisplayRole:
            last = f"{summary.shape_count} shapes  {self._class_names(summary, 2)}"
            if suggested is not None and self.suggested_only:
                last = f"rank {suggested.rank}  score {suggested.score:.2f}"
            return (f"{self.elide(source)}\n#{frame.frame_index}  {format_time(frame.timestamp_s)}"
                    f"\n{self.elide(last)}")
        if role == Qt.ItemDataRole.DecorationRole:
            return self._thumbnail(index.row(), frame)
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = (f"{source}\nframe {frame.frame_index} at {format_time(frame.timestamp_s)}\n"
                   f"{summary.shape_count} shapes; classes: {self._class_names(summary) or '-'}")
            if frame.id in self.excluded:
                tip += f"\n{EXCLUDED_TEXT}"
            if suggested is not None:
                tip += (f"\nsuggested {suggested.rank} to label (score {suggested.score:.2f}: "
                        f"{suggested.details})")
            return tip
        if role == FrameRole:
            return frame
        return None

    def _class_names(self, summary: FrameSummary, at_most: int | None = None) -> str:
        names = [c.name for c in (self.session.class_by_id(i) for i in summary.class_ids) if c]
        if at_most is not None and len(names) > at_most:
            names = names[:at_most] + ["…"]
        return ", ".join(names)

    def _thumbnail(self, row: int, frame: Frame) -> QPixmap:
        pixmap = self._pixmaps.get(frame.id)
        if pixmap is not None:
            return pixmap
        image = self._images.get(frame.id)
        if image is not None:
            self._images.move_to_end(frame.id)
            pixmap = draw_shapes(image, frame, self._shapes(frame))
            if frame.id in self.excluded:
                pixmap = mark_excluded(pixmap)
            self._pixmaps[frame.id] = pixmap
            return pixmap
        if frame.id not in self._loading:
            self._wanted.add(frame.id)
            self._dispatch_timer.start()
        return self._placeholder

    def _dispatch_wanted(self) -> None:
        wanted, self._wanted = self._wanted, set()
        for frame_id in wanted:
            row = self.row_of.get(frame_id)
            # is_visible() may lay the view out, which asks data() again and re-wants a frame
            # decoded meanwhile: never decode one twice.
            if (row is not None and frame_id not in self._loading
                    and frame_id not in self._images and self.is_visible(row)):
                self._loading.add(frame_id)
                self.loader.request(self.rows[row].frame)

    def _shapes(self, frame: Frame) -> list[tuple[str, object, str]]:
        out = []
        for ann in self.session.annotations(frame.id):
            cls = self.session.class_by_id(ann.class_id)
            if ann.kind != "tag" and ann.geometry:
                out.append((ann.kind, ann.geometry, cls.color if cls else "#ffffff"))
        return out

    def _on_loader_loaded(self, frame_id: int, image: QImage) -> None:
        self._loading.discard(frame_id)
        self._images[frame_id] = image
        self._pixmaps.pop(frame_id, None)
        while len(self._images) > PIXMAP_CACHE:
            old, _ = self._images.popitem(last=False)
            self._pixmaps.pop(old, None)
        row = self.row_of.get(frame_id)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])

    def refresh_exclusions(self, frame_ids: list[int]) -> None:
        """Re-read which frames are excluded and redraw these frames' thumbnails."""
        self.excluded = dataset_exclusions.excluded_frame_ids(self.session.conn)
        for frame_id in frame_ids:
            self._pixmaps.pop(frame_id, None)
            row = self.row_of.get(frame_id)
            if row is not None:
                self.dataChanged.emit(self.index(row), self.index(row))

    def forget(self, frame_ids: list[int]) -> None:
        for frame_id in frame_ids:
            self._images.pop(frame_id, None)
            self._pixmaps.pop(frame_id, None)


class GalleryView(QListView):
    """The thumbnail list; Del (or Backspace) asks to delete the selected frames."""
    delete_pressed = pyqtSignal()

    _DELETE_KEYS = (Qt.Key.Key_Delete, Qt.Key.Key_Backspace)

    def event(self, event) -> bool:
        # Claim Del before the window's "delete selected shapes" shortcut sees it.
        if event.type() == QEvent.Type.ShortcutOverride and event.key() in self._DELETE_KEYS:
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event) -> None:
        if event.key() in self._DELETE_KEYS and not event.modifiers():
            self.delete_pressed.emit()
            event.accept()
            return
        super().keyPressEvent(event)


class Gallery(QWidget):
    frame_activated = pyqtSignal(object)          # Frame

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("gallery")
        self.session: ProjectSession | None = None
        self.model: GalleryModel | None = None
        self.loader: ThumbnailLoader | None = None
        self.view = GalleryView(self)
        self.view.setObjectName("galleryView")
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setUniformItemSizes(True)
        self.view.setWordWrap(False)
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.view.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE * 3 // 4))
        # Room for every label line at the view's font: a label is never cut off.
        line = QFontMetrics(self.view.font()).lineSpacing()
        self.view.setGridSize(QSize(THUMB_SIZE + 16, THUMB_SIZE * 3 // 4 + LABEL_LINES * line + 14))
        self.view.delete_pressed.connect(self.delete_selected)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.clicked.connect(self._on_view_clicked)
        self.exclusion_menu = ExclusionMenu(self)
        self.filter_combo = QComboBox(self)
        self.filter_combo.setObjectName("galleryFilter")
        self.filter_combo.activated.connect(self._on_filter_activated)
        self.count_label = QLabel(self)
        delete = QPushButton("Delete frames", self)
        delete.setObjectName("deleteFramesButton")
        delete.clicked.connect(self._on_delete_clicked)
        top = QHBoxLayout()
        top.addWidget(QLabel("Show:"))
        top.addWidget(self.filter_combo, 1)
        top.addWidget(self.count_label)
        top.addWidget(delete)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(150)
        self._refresh_timer.timeout.connect(self._on_refresh_timer)

    def set_session(self, session: ProjectSession | None) -> None:
        self.close_session()
        self.session = session
        if session is None:
            return
        self.loader = ThumbnailLoader(ThumbnailCache(session.project.root), self)
        self.model = GalleryModel(session, self.loader, self)
        self.model.is_visible = self._row_visible
        self.model.elide = self._elide
        self.view.setModel(self.model)
        session.frames_changed.connect(self.model.reload)
        session.frames_changed.connect(self._update_count)
        session.annotations_changed.connect(self._refresh_timer.start)
        session.classes_changed.connect(self._fill_filter)
        session.frames_changed.connect(self._update_filter_counts)
        session.exclusions_changed.connect(self.model.refresh_exclusions)
        self._fill_filter()
        self._update_count()

    def close_session(self) -> None:
        """Stop thumbnail loading (waits for the pool) before the project closes."""
        self._refresh_timer.stop()
        if self.loader is not None:
            self.loader.stop()
        self.view.setModel(None)
        if self.model is not None:
            self.model.deleteLater()
        self.model, self.loader, self.session = None, None, None

    def _elide(self, text: str) -> str:
        """Fit one label line in the thumbnail's width, cutting in the middle."""
        width = self.view.gridSize().width() - 10
        return QFontMetrics(self.view.font()).elidedText(text, Qt.TextElideMode.ElideMiddle, width)

    def _row_visible(self, row: int) -> bool:
        rect = self.view.visualRect(self.model.index(row))
        return rect.isValid() and rect.intersects(self.view.viewport().rect())

    def _fill_filter(self) -> None:
        current = self.filter_combo.currentData()
        self.filter_combo.clear()
        self.filter_combo.addItem("All frames", None)
        self.filter_combo.addItem("No annotations", "none")
        for cls in self.session.classes():
            self.filter_combo.addItem(f"Class: {cls.name}", cls.id)
        if self.model is not None and self.model.suggestions:
            self.filter_combo.addItem("Suggested to label", SUGGESTED)
        self.filter_combo.setCurrentIndex(max(self.filter_combo.findData(current), 0))
        self._update_filter_counts()
        self._apply_filter()

    def _update_filter_counts(self) -> None:
        """Each filter says how many frames it shows: "Class: car (12)"."""
        if self.session is None:
            return
        counts = filter_counts(self.session.conn)
        for row in range(self.filter_combo.count()):
            data = self.filter_combo.itemData(row)
            if data is None:
                text, n = "All frames", counts.total
            elif data == "none":
                text, n = "No annotations", counts.unannotated
            elif data == SUGGESTED:
                text, n = "Suggested to label", len(self.model.suggestions) if self.model else 0
            else:
                cls = self.session.class_by_id(data)
                text, n = f"Class: {cls.name if cls else data}", counts.by_class.get(data, 0)
            self.filter_combo.setItemText(row, f"{text} ({n})")

    def _on_filter_activated(self, _row: int) -> None:
        self._apply_filter()

    def _apply_filter(self) -> None:
        data = self.filter_combo.currentData()
        class_id = data if isinstance(data, int) else None
        wanted = (class_id, data == "none", data == SUGGESTED)
        model = self.model
        if (model.class_filter, model.unannotated_only, model.suggested_only) != wanted:
            model.set_filter(*wanted)
        self._update_count()

    def show_suggestions(self, ranking: list[SuggestedFrame], *, select: bool = True) -> None:
        """Show Suggest frames' ranking: the "Suggested to label" filter, best first
        (`select`: switch the gallery to it)."""
        if self.model is None:
            return
        self.model.suggestions = {s.frame_id: s for s in ranking}
        self._fill_filter()
        if select:
            self.filter_combo.setCurrentIndex(max(self.filter_combo.findData(SUGGESTED), 0))
        if self.model.suggested_only:
            self.model.reload()
        self._apply_filter()

    def set_filter(self, class_id: int | None = None, unannotated_only: bool = False) -> None:
        data = "none" if unannotated_only else class_id
        self.filter_combo.setCurrentIndex(max(self.filter_combo.findData(data), 0))
        self._apply_filter()

    def _on_refresh_timer(self) -> None:
        if self.model is not None:
            self.model.refresh()
            self._update_count()
            self._update_filter_counts()

    def _update_count(self) -> None:
        if self.model is not None:
            more = "+" if self.model.canFetchMore() else ""
            self.count_label.setText(f"{self.model.rowCount()}{more} frames")

    def _on_view_clicked(self, index) -> None:
        if index.isValid() and len(self.view.selectionModel().selectedIndexes()) <= 1:
            self.frame_activated.emit(index.data(FrameRole))

    def selected_frames(self) -> list[Frame]:
        rows = sorted(i.row() for i in self.view.selectionModel().selectedIndexes())
        return [self.model.rows[r].frame for r in rows]

    def select_frame(self, frame_id: int) -> None:
        """Select (and scroll to) a frame, e.g. the one just captured."""
        row = self.model.find_row(frame_id) if self.model else None
        if row is not None:
            index = self.model.index(row)
            self.view.setCurrentIndex(index)
            self.view.scrollTo(index)

    @pyqtSlot()
    def _on_delete_clicked(self) -> None:
        self.delete_selected()

    @reports_errors
    def delete_selected(self) -> None:
        frames = self.selected_frames()
        if not frames or not dialogs.confirm(
                self, "Delete frames",
                f"Delete {len(frames)} frame(s) and all their annotations? (Ctrl+Z undoes it.)"):
            return
        self.session.delete_frames([f.id for f in frames])
        self.loader.cache.remove(frames)
        self.model.forget([f.id for f in frames])
