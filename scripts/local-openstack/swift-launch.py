"""Runs a Swift daemon with every file it reads taken from one state directory.

Swift 2.30's daemons read swift.conf from /etc/swift whatever `swift_dir` says (`swift_dir` only locates the
rings). set_swift_dir() before the daemon's module loads makes them use our directory instead, so the stand-in
never depends on, or changes, the machine's /etc/swift.

usage: swift-launch.py SWIFT_DIR /usr/bin/swift-<daemon> CONF [daemon args]
"""
import runpy
import sys

from swift.common.utils import set_swift_dir

swift_dir, entry = sys.argv[1], sys.argv[2]
set_swift_dir(swift_dir)
sys.argv = [entry] + sys.argv[3:]
runpy.run_path(entry, run_name="__main__")
