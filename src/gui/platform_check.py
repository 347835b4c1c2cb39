"""Before Qt starts: can its X11 platform plugin load here?

When it cannot, Qt aborts (SIGABRT) with a message that blames the wrong library. This module
imports no Qt, so `python main.py` can say in one line what to install instead.
"""
from __future__ import annotations

import ctypes
import os

# Every library Qt's xcb plugin (with Qt6Gui) loads that a minimal system may lack (found with
# `ldd` on PyQt6/Qt6/plugins/platforms/libqxcb.so), with its Debian/Ubuntu package.
XCB_LIBRARIES = {
    "libEGL.so.1": "libegl1", "libGL.so.1": "libgl1", "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6", "libglib-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3", "libX11.so.6": "libx11-6", "libX11-xcb.so.1": "libx11-xcb1",
    "libXau.so.6": "libxau6", "libXdmcp.so.6": "libxdmcp6",
    "libxcb.so.1": "libxcb1", "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4", "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1", "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0", "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0", "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1", "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0", "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0", "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
}


def missing_libraries() -> list[str]:
    """The libraries of XCB_LIBRARIES the dynamic loader cannot find. Loading these small
    system libraries takes milliseconds; loading the plugin itself would pull in Qt6Gui."""
    missing = []
    for name in XCB_LIBRARIES:
        try:
            ctypes.CDLL(name)
        except OSError:
            missing.append(name)
    return missing


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
    missing = missing_libraries()
    if missing:
        packages = " ".join(dict.fromkeys(XCB_LIBRARIES[name] for name in missing))
        return (f"Qt's X11 platform plugin cannot load, missing {', '.join(missing)}; "
                f"on Debian/Ubuntu: sudo apt-get install {packages} (the README lists every "
                "library it needs)")
    return None
