"""Shows services of the root network namespace inside a harness namespace, under the same port numbers.

usage: ns-forward.py NETNS PORT...      (started and stopped by PID by local-cloud.sh)

The local cloud's "outside" (netns cc-<tag>-ext: the user's laptop, and the internet the guests see) cannot reach
the root namespace, where Keystone, Swift, the cloud's APIs and the harness's file and archive proxies listen on
127.0.0.1. For each PORT this process listens on 0.0.0.0:PORT *inside* NETNS (so on its 127.0.0.1 and on the public
gateway address) and connects each accepted connection to 127.0.0.1:PORT in the root namespace. The listening
sockets are made after setns(2) into NETNS and keep that namespace after the process switches back; every
outgoing connection is made from the root namespace. Only these ports cross, only towards 127.0.0.1: the root
namespace gets no route, address or firewall rule.
"""
import asyncio
import ctypes
import os
import socket
import sys

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)


def setns(fd):
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def listeners(netns, ports):
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    socks = []
    try:
        setns(target)
        for port in ports:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", port))
            s.listen(256)
            s.setblocking(False)
            socks.append((port, s))
    finally:
        setns(home)  # back before any connection is made: the root namespace's 127.0.0.1
        os.close(target)
        os.close(home)
    return socks


async def pump(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            writer.close()


async def serve(port, sock):
    async def handle(c_reader, c_writer):
        try:
            u_reader, u_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            c_writer.close()  # nothing listens there now: the client sees a closed connection, as it would directly
            return
        await asyncio.gather(pump(c_reader, u_writer), pump(u_reader, c_writer))
        u_writer.close()
        c_writer.close()

    server = await asyncio.start_server(handle, sock=sock)
    await server.serve_forever()


async def main():
    netns, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
    if not ports:
        raise SystemExit("usage: ns-forward.py NETNS PORT...")
    socks = listeners(netns, ports)
    print(f"ns-forward: {netns} 0.0.0.0:{{{','.join(map(str, ports))}}} -> root 127.0.0.1", flush=True)
    await asyncio.gather(*(serve(p, s) for p, s in socks))


asyncio.run(main())
