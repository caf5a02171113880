"""Stand-in BMPs for running a spalloc server with no SpiNNaker hardware.

Answers the SCP commands a spalloc server sends to a board's BMP, over UDP on loopback
addresses: one process can stand in for any number of BMPs (one socket per address).

    python3 fake_bmp.py 127.0.1.0 [127.0.2.0 ...] [options]
    SERVER_VENV/bin/python fake_bmp.py --config server.cfg [options]

`--config` reads a reference (Python) server configuration, the way the reference server does
(it is Python code, so this needs the venv with `spalloc_server`), and serves every BMP address
its machines name. Options: `--port` (17893, the BMP port), `--version` (software version
reported, default 2.0.0; below 2 a server skips FPGA checks and link writes), `--delay S`
(before each reply), `--fail-power` (power commands get error code 0x81), `--quiet` (no log),
`--ready-file PATH` (created once every address is bound, for scripts to wait on).

Replies: CMD_VER (0) a version block naming "BC&MP/Fake"; CMD_LINK_READ (17), the FPGA register
read the server uses to check an FPGA's ID, the ID it asks about (argument 3), so every check
passes; everything else (CMD_BMP_POWER 57, CMD_LINK_WRITE 18, ...) a bare RC_OK.

Unless --quiet, each command received is logged on one line, for comparing what two servers
send (scripts/compare-bmp-traffic.sh):
    <unix time> <BMP address> <command name or number> board=<n> args=[<hex>, <hex>, <hex>] data=<hex>
"""
import argparse
import select
import socket
import struct
import sys
import time

COMMAND_NAMES = {0: "CMD_VER", 17: "CMD_LINK_READ", 18: "CMD_LINK_WRITE", 57: "CMD_BMP_POWER"}
RC_OK = 0x80
RC_ERROR = 0x81
SDP_HEADER = struct.Struct("<2x8B")  # two padding bytes, then the SDP header
SCP_HEADER = struct.Struct("<HH")  # command (or result code) and sequence number
SCP_ARGS = struct.Struct("<3I")


class Request:
    """One SCP request, decoded."""

    def __init__(self, packet):
        (self.flags, self.tag, self.dest_port_cpu, self.src_port_cpu,
         self.dest_y, self.dest_x, self.src_y, self.src_x) = SDP_HEADER.unpack_from(packet)
        self.command, self.seq = SCP_HEADER.unpack_from(packet, SDP_HEADER.size)
        body = SDP_HEADER.size + SCP_HEADER.size
        if len(packet) >= body + SCP_ARGS.size:
            self.args = SCP_ARGS.unpack_from(packet, body)
            self.data = packet[body + SCP_ARGS.size:]
        else:
            self.args = (0, 0, 0)
            self.data = b""
        self.board = self.dest_port_cpu & 0x1F

    def answer(self, rc, payload=b""):
        """The reply: the SDP addresses swapped, the same sequence number."""
        header = struct.pack("<2x8B", 0x07, 0xFF, self.src_port_cpu, self.dest_port_cpu,
                             self.src_y, self.src_x, self.dest_y, self.dest_x)
        return header + SCP_HEADER.pack(rc, self.seq) + payload

    def log_line(self, address):
        name = COMMAND_NAMES.get(self.command, str(self.command))
        args = ", ".join("%#x" % a for a in self.args)
        return "%.3f %s %s board=%d args=[%s] data=%s" % (
            time.time(), address, name, self.board, args, self.data.hex())


def version_block(board, version):
    """What CMD_VER answers: SpiNNMan's VersionInfo layout, new style (version number 0xFFFF,
    then "name/hardware" and the version string, each NUL-terminated)."""
    return (struct.pack("<BBBBHHI", board, 0, 0, 0, 0, 0xFFFF, 0)
            + b"BC&MP/Fake\0" + version.encode() + b"\0")


def respond(request, options):
    """The reply to a request, or None for no reply."""
    if request.command == 0:
        return request.answer(RC_OK, version_block(request.board, options.version))
    if request.command == 17:
        return request.answer(RC_OK, struct.pack("<I", request.args[2]))
    if request.command == 57 and options.fail_power:
        return request.answer(RC_ERROR)
    return request.answer(RC_OK)


def bmp_addresses(config_path):
    """Every BMP address of the machines of a reference server configuration file."""
    from spalloc_server import configuration, coordinates
    names = dict(vars(configuration))
    names.update(vars(coordinates))
    with open(config_path) as f:
        exec(compile(f.read(), config_path, "exec"), names)  # the format is Python code
    return sorted({ip for machine in names["configuration"].machines
                   for ip in machine.bmp_ips.values()})


def main():
    parser = argparse.ArgumentParser(description="Stand-in SpiNNaker BMPs (SCP over UDP).")
    parser.add_argument("addresses", nargs="*", metavar="IP")
    parser.add_argument("--config", help="serve the BMPs of this reference server config")
    parser.add_argument("--port", type=int, default=17893)
    parser.add_argument("--version", default="2.0.0")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--fail-power", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--ready-file")
    options = parser.parse_args()
    addresses = list(options.addresses)
    if options.config:
        addresses += bmp_addresses(options.config)
    if not addresses:
        parser.error("no BMP address given (IP arguments or --config)")
    sockets = []
    for address in addresses:
        if not address.startswith("127."):
            sys.exit("fake_bmp.py: only loopback addresses (127.x.x.x), not %s" % address)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((address, options.port))
        except OSError as e:
            sys.exit("fake_bmp.py: cannot listen on %s:%d: %s" % (address, options.port, e))
        sockets.append(sock)
    if options.ready_file:
        open(options.ready_file, "w").close()
    while True:
        readable, _, _ = select.select(sockets, [], [])
        for sock in readable:
            packet, sender = sock.recvfrom(4096)
            if len(packet) < SDP_HEADER.size + SCP_HEADER.size:
                continue
            request = Request(packet)
            if not options.quiet:
                print(request.log_line(sock.getsockname()[0]), flush=True)
            reply = respond(request, options)
            if reply is not None:
                if options.delay:
                    time.sleep(options.delay)
                sock.sendto(reply, sender)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
