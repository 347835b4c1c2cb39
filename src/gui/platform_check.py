"""Before Qt starts: can its X11 platform plugin load here?

When it cannot, Qt aborts (SIGABRT) with a message that blames the wrong library. This module
imports no Qt, so `python main.py` can say in one line what to install instead.
"""
from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

# Debian/Ubuntu packages of every library Qt's xcb plugin (and Qt6Gui) loads that a minimal
# system may lack (found with `ldd` on PyQt6/Qt6/plugins/platforms/libqxcb.so).
XCB_PACKAGES = (
    "libegl1", "libgl1", "libfontconfig1", "libfreetype6", "libglib2.0-0", "libdbus-1-3",
    "libx11-6", "libx11-xcb1", "libxcb1", "libxcb-cursor0", "libxcb-icccm4", "libxcb-image0",
    "libxcb-keysyms1", "libxcb-randr0", "libxcb-render0", "libxcb-render-util0",
    "libxcb-shape0", "libxcb-shm0", "libxcb-sync1", "libxcb-util1", "libxcb-xfixes0",
    "libxcb-xkb1", "libxkbcommon0", "libxkbcommon-x11-0",
)
INSTALL_HINT = f"on Debian/Ubuntu: sudo apt-get install {' '.join(XCB_PACKAGES)}"


def xcb_plugin() -> Path | None:
    spec = importlib.util.find_spec("PyQt6")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "Qt6/plugins/platforms/libqxcb.so"
    return path if path.is_file() else None


def missing_libraries(plugin: Path) -> list[str]:
    """Libraries the plugin needs that the dynamic loader cannot find ([] when it loads)."""
    try:
        ctypes.CDLL(str(plugin))
        return []
    except OSError as exc:
        first = str(exc).split(":")[0].strip()
    ldd = shutil.which("ldd")
    if ldd is None:
        return [first]
    out = subprocess.run([ldd, str(plugin)], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if "not found" in line] or [first]


def display_problem() -> str | None:
    """Why the GUI cannot start on this machine's display (one line), or None."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith("xcb"):
        return None                     # offscreen, wayland...: chosen on purpose
    if not os.environ.get("DISPLAY"):
        if os.environ.get("WAYLAND_DISPLAY") and not platform:
            return None
        return ("no display to open the window on (DISPLAY is not set): run it on a desktop, "
                "with ssh -X, or under xvfb-run; headless commands need none (python main.py --help)")
    plugin = xcb_plugin()
    if plugin is None:
        return None                     # not a pip PyQt6: leave it to Qt
    missing = missing_libraries(plugin)
    if missing:
        return (f"Qt's X11 platform plugin cannot load, missing {', '.join(missing)}; "
                f"{INSTALL_HINT}")
    return None
