"""A stand-in for the desktop's notification daemon, for the browser tests.

Chromium on Linux shows web notifications through the session bus's
org.freedesktop.Notifications service (the Desktop Notifications spec).
This one owns that name on the bus given by DBUS_SESSION_BUS_ADDRESS and
prints each call as one JSON line on stdout:
  {"ready": true}                          once it serves
  {"notify": id, "replaces": id_or_0, "summary": ..., "body": ..., "actions": [...]}
  {"close": id}                            CloseNotification
Lines on stdin act like the person at the desktop:
  {"click": id}                            ActionInvoked(id, "default"): a click
Needs python3-dbus and python3-gi (Debian), hence /usr/bin/python3.
"""

import json
import sys

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

NAME = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"


def say(obj):
    print(json.dumps(obj, ensure_ascii=False), flush=True)


class Daemon(dbus.service.Object):
    def __init__(self, bus):
        self.name = dbus.service.BusName(NAME, bus, do_not_queue=True)
        super().__init__(bus, PATH)
        self.next_id = 1

    @dbus.service.method(NAME, in_signature="", out_signature="as")
    def GetCapabilities(self):
        return ["actions", "body", "persistence"]

    @dbus.service.method(NAME, in_signature="", out_signature="ssss")
    def GetServerInformation(self):
        return ("hark-test-notifications", "hark", "1", "1.2")

    @dbus.service.method(NAME, in_signature="susssasa{sv}i", out_signature="u")
    def Notify(self, app, replaces, icon, summary, body, actions, hints, timeout):
        nid = int(replaces)
        if nid == 0:
            nid = self.next_id
            self.next_id += 1
        say({"notify": nid, "replaces": int(replaces), "summary": str(summary), "body": str(body), "actions": [str(a) for a in actions]})
        return dbus.UInt32(nid)

    @dbus.service.method(NAME, in_signature="u", out_signature="")
    def CloseNotification(self, nid):
        say({"close": int(nid)})
        self.NotificationClosed(nid, dbus.UInt32(3))

    @dbus.service.signal(NAME, signature="uu")
    def NotificationClosed(self, nid, reason):
        pass

    @dbus.service.signal(NAME, signature="us")
    def ActionInvoked(self, nid, action):
        pass


def main():
    DBusGMainLoop(set_as_default=True)
    daemon = Daemon(dbus.SessionBus())
    loop = GLib.MainLoop()

    def on_input(source, condition):
        line = sys.stdin.readline()
        if not line:
            loop.quit()
            return False
        cmd = json.loads(line)
        if "click" in cmd:
            daemon.ActionInvoked(dbus.UInt32(cmd["click"]), "default")
        return True

    GLib.io_add_watch(sys.stdin, GLib.IO_IN | GLib.IO_HUP, on_input)
    say({"ready": True})
    loop.run()


if __name__ == "__main__":
    main()
