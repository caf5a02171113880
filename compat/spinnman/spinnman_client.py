"""SpiNNMan's real v2 client (PyPI spinnman 1!7.4.1, SpallocClient) against our
server over HTTPS, as sPyNNaker uses it.

Run by compat/spinnman/run.sh inside a virtualenv holding spinnman and trustme:

    python spinnman_client.py --server BIN --work DIR

It makes a throw-away CA and server certificate (trustme), writes a config with
an [http] section served over TLS, adds a user and a token with
`spalloc-server user ...`, starts the server, and drives the client: password
and token log-in, machines, every create form the client has, waiting until
ready, connections and root host, where-is, keepalive, job listing, get_job,
long-poll, destroy, a server restart under a live session, and refused log-ins.
The simulated boards answer SCP, so it also reads a board's version through
the job proxy, both with SpiNNMan's own proxied SC&MP connection
(`job.connect_to_board`, a websocket to our `/spalloc/proxy/{job}`) and
with SpiNNMan's plain UDP SCAMPConnection sent to our local forwarder
(`spalloc-proxy`, given by --proxy-tool).
It prints one line per check, `PASS name` or `FAIL name: why`, or `KNOWN name`
for something our server deliberately does not serve, and exits 1 if any
check failed. No check patches the client: the test certificate is trusted
through REQUESTS_CA_BUNDLE (contract §8).
"""

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

import requests
import trustme

from spinn_utilities.config_holder import set_config
from spinnman.config_setup import unittest_setup
from spinnman.data.spinnman_data_writer import SpiNNManDataWriter
from spinnman.exceptions import SpallocException
from spinnman.spalloc import SpallocClient, SpallocState
from spinnman.spalloc.spalloc_client import SpallocBoardUnavailableException
from spinnman.connections.udp_packet_connections import SCAMPConnection
from spinnman.processes import FixedConnectionSelector, GetVersionProcess

USER = "alice"
PASSWORD = "wonderland rabbit"
MACHINE = "test-machine"
failures = 0
deadline = time.monotonic() + 150  # the whole run; each wait is bounded too


def report(ok, name, why=""):
    global failures
    if ok:
        print(f"PASS spinnman: {name}", flush=True)
    else:
        failures += 1
        print(f"FAIL spinnman: {name}: {why}", flush=True)


def check(name):
    """check(name)(fn, *args) runs fn, reports PASS or FAIL, and returns its
    result (True if it returned None), or None if it failed."""

    def run(fn, *args):
        if time.monotonic() > deadline:
            report(False, name, "the run took too long; not attempted")
            return None
        try:
            result = fn(*args)
        except Exception as e:  # a check failed: say why, go on
            report(False, name, f"{type(e).__name__}: {e}\n"
                   + "".join(traceback.format_exc(limit=3)))
            return None
        report(True, name)
        return result if result is not None else True

    return run


def expect(condition, what):
    """Raises (failing the check) unless `condition`."""
    if not condition:
        raise AssertionError(what)
    return True


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """Our server as a process, restartable on the same ports and state."""

    def __init__(self, binary, config, log):
        self.binary, self.config, self.log = binary, config, log
        self.process = None

    def start(self, http_port):
        self.log_file = open(self.log, "a")
        self.process = subprocess.Popen(
            [self.binary, self.config], stdout=self.log_file,
            stderr=subprocess.STDOUT)
        for _ in range(200):  # 20 s
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.tail()}")
            try:
                with socket.create_connection(("127.0.0.1", http_port), 0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not listen: {self.tail()}")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def tail(self):
        with open(self.log) as f:
            return "".join(f.readlines()[-5:])


def run_cli(binary, config, args, stdin=""):
    done = subprocess.run([binary, "user", *args, "--config", config],
                          input=stdin, capture_output=True, text=True,
                          timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"user {args}: {done.stderr}")
    return done.stdout.strip()


def fresh_job_settings(**machine):
    """The [Machine] options create_job reads (contract §9), for one job."""
    writer = SpiNNManDataWriter.mock()
    writer.set_n_required(1, None)
    for key in ("spalloc_machine", "spalloc_triad", "spalloc_physical",
                "spalloc_ip_address", "spalloc_width", "spalloc_height",
                "spalloc_max_dead_boards"):
        set_config("Machine", key, str(machine.get(key, "None")))


def until_ready(job):
    """Long-polls (held by the server) past QUEUED and POWER, then runs the
    client's own wait_until_ready, which is then immediate."""
    state = job.get_state()
    for _ in range(20):
        if state not in (SpallocState.QUEUED, SpallocState.POWER):
            break
        state = job.wait_for_state_change(state, timeout=35)
    job.wait_until_ready()
    return job.get_state()


def stop_keepalives(jobs):
    """A listed job handle starts its own keepalive thread (§3.10): stop it."""
    for j in jobs:
        j._keepalive_url = None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True, help="spalloc-server binary")
    parser.add_argument("--work", required=True, help="a scratch directory")
    parser.add_argument("--proxy-tool", help="spalloc-proxy binary")
    args = parser.parse_args()
    work = args.work

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_pem.write_to_path(os.path.join(work, "key.pem"))
    cert.cert_chain_pems[0].write_to_path(os.path.join(work, "cert.pem"))
    ca.cert_pem.write_to_path(os.path.join(work, "ca.pem"))
    os.environ["REQUESTS_CA_BUNDLE"] = os.path.join(work, "ca.pem")
    os.environ["WEBSOCKET_CLIENT_CA_BUNDLE"] = os.path.join(work, "ca.pem")
    os.environ["no_proxy"] = os.environ["NO_PROXY"] = "127.0.0.1,localhost"
    for key in ("SPALLOC_USER", "SPALLOC_PASSWORD", "OIDC_BEARER_TOKEN"):
        os.environ.pop(key, None)

    http_port = free_port()
    config = os.path.join(work, "server.toml")
    with open(config, "w") as f:
        f.write(f"""
ip = "127.0.0.1"
port = {free_port()}
timeout_check_interval = 0.2
seconds_before_free = 0.1

[http]
port = {http_port}
tls_cert = "{work}/cert.pem"
tls_key = "{work}/key.pem"

[[machine]]
name = "{MACHINE}"
tags = ["default"]
width = 2
height = 1
base_ip = "127.47.1.0"
power_delay = 0.3
answer_scp = true
""")
    binary = args.server
    token = check("the user command adds a user and prints a token")(
        lambda: (run_cli(binary, config, ["add", USER, "--role", "user"],
                         PASSWORD + "\n"),
                 run_cli(binary, config, ["token", USER, "--label", "ci"]))[1])
    if not token:
        return 1
    server = Server(binary, config, os.path.join(work, "server.log"))
    if not check("our server starts with TLS")(server.start, http_port):
        return 1
    url = f"https://127.0.0.1:{http_port}/spalloc/"
    unittest_setup()
    # The client logs every request at INFO and each board-specific request
    # as a WARNING; the PASS/FAIL lines say what happened.
    for name in ("spinnman", "spinn_utilities", "spinn_machine"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        run_checks(server, url, token, http_port, args.proxy_tool, work)
    finally:
        server.stop()
    return 1 if failures else 0


def read_version(connection):
    """The version of the board behind `connection`, as SpiNNMan reads it
    (GetVersionProcess: an SCP version request, retried on timeout)."""
    selector = FixedConnectionSelector(connection)
    return GetVersionProcess(selector).get_version(0, 0, 0)


def proxied_version(job, board_ip):
    """SpiNNMan's proxied SC&MP connection through our websocket proxy."""
    connection = job.connect_to_board(0, 0)
    try:
        info = read_version(connection)
    finally:
        connection.close()
    expect(info.name == "SC&MP", info.name)
    expect(board_ip in info.hardware, info.hardware)


def forwarded_version(tool, url, job_id, board_ip, work):
    """SpiNNMan's plain UDP SCAMPConnection to spalloc-proxy's local port."""
    env = dict(os.environ, HOME=work, XDG_CONFIG_HOME=os.path.join(work, "cfg"))
    forwarder = subprocess.Popen(
        [tool, str(job_id), "--url", url, "--ca-cert",
         os.path.join(work, "ca.pem"), "--user", USER, "--password", PASSWORD,
         "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = forwarder.stdout.readline()
        if not line:
            raise RuntimeError(f"no port table: {forwarder.stderr.read()}")
        import json
        table = json.loads(line)
        local = table["boards"][0]["local"]
        host, port = local.rsplit(":", 1)
        connection = SCAMPConnection(0, 0, remote_host=host,
                                     remote_port=int(port))
        try:
            info = read_version(connection)
        finally:
            connection.close()
        expect(info.name == "SC&MP", info.name)
        expect(board_ip in info.hardware, info.hardware)
    finally:
        forwarder.send_signal(signal.SIGINT)
        try:
            code = forwarder.wait(10)
        except subprocess.TimeoutExpired:
            forwarder.kill()
            forwarder.wait()
            code = None
    expect(code == 0, f"spalloc-proxy exited {code} on Ctrl-C")


def run_checks(server, url, token, http_port, proxy_tool, work):
    # -- password log-in (§3.1)
    client = check("log in with a user name and password")(
        SpallocClient, url, USER, PASSWORD)
    if not client:
        return
    check("the service version is three numbers")(
        lambda: expect(str(client.version).count(".") == 2, client.version))

    def machines():
        m = client.list_machines()
        assert MACHINE in m, m
        assert (m[MACHINE].width, m[MACHINE].height) == (2, 1), m[MACHINE]
        assert "default" in m[MACHINE].tags
    check("list machines")(machines)

    # -- create by number of boards, with tags (no machine named)
    fresh_job_settings()
    job = check("create a job by number of boards (tags default)")(
        client.create_job)
    if not job:
        return
    check("wait until ready (num-boards)")(
        lambda: expect(until_ready(job) == SpallocState.READY, "not READY"))

    def connections():
        found = job.get_connections()
        expect((0, 0) in found, found)
        return found
    connections = check("read the connections, (0, 0) among them")(
        connections)

    def root_host():
        host = job.get_root_host()
        expect(connections and host == connections[(0, 0)], host)
        return host
    root = check("read the root host, the IP of (0, 0)")(root_host)
    if root:
        check("read a board's version through the proxy "
              "(connect_to_board, SpiNNMan's proxied SC&MP connection)")(
            proxied_version, job, root)
        if proxy_tool:
            job_number = job._url.rstrip("/").rsplit("/", 1)[-1]
            check("read a board's version with a plain UDP SCAMPConnection "
                  "to spalloc-proxy's local port")(
                forwarded_version, proxy_tool, url, job_number, root, work)

    def where_is():
        board = job.where_is_machine(0, 0)
        expect(board is not None and len(board) == 3, board)
        return board
    physical = check("where-is chip (0, 0): a physical board")(where_is)
    check("where-is a chip outside the job: None")(
        lambda: expect(job.where_is_machine(200, 200) is None, "not None"))

    def keepalive():
        assert job._SpallocJob__keepalive() is True
        cookies, headers = job._session_credentials
        headers["Content-Type"] = "text/plain; charset=UTF-8"
        r = requests.put(job._url + "keepalive", data="alive",
                         cookies=cookies, headers=headers, timeout=10)
        assert r.status_code == 200 and r.text.strip() == "ok", (r, r.text)
    check("keepalive PUT, as its thread sends it")(keepalive)

    def listed():
        jobs = list(client.list_jobs())
        stop_keepalives(jobs)
        urls = [j._url for j in jobs]
        assert job._url in urls, (job._url, urls)
    check("list jobs shows the job")(listed)

    job_id = job._url.rstrip("/").rsplit("/", 1)[-1]

    def by_id():
        again = client.get_job(job_id)  # asks for .../jobs//ID/
        stop_keepalives([again])
        assert "//" in again._url, again._url
        assert again.get_state() == SpallocState.READY
    check("get_job by id (the // URL)")(by_id)

    # -- a long-poll held open until the job is destroyed (FEC's habit)
    seen = {}

    def long_poll():
        seen["state"] = job.wait_for_state_change(SpallocState.READY,
                                                  timeout=60)
    poller = threading.Thread(target=long_poll, daemon=True)
    poller.start()
    time.sleep(0.5)
    check("destroy a job")(job.destroy, "finished")
    poller.join(40)
    check("a held long-poll answers DESTROYED")(
        lambda: expect(seen.get("state") == SpallocState.DESTROYED, seen))
    check("a destroyed job reads DESTROYED")(
        lambda: expect(job.get_state() == SpallocState.DESTROYED, "not"))

    # -- every other create form the client has (§3.4)
    forms = [
        ("by number of boards on a named machine",
         dict(spalloc_machine=MACHINE)),
        ("by dimensions with max-dead-boards",
         dict(spalloc_machine=MACHINE, spalloc_width=1, spalloc_height=1,
              spalloc_max_dead_boards=0)),
        ("by triad", dict(spalloc_machine=MACHINE, spalloc_triad="1,0,1")),
    ]
    if physical:
        forms.append(("by physical board", dict(
            spalloc_machine=MACHINE,
            spalloc_physical=",".join(map(str, physical)))))
    if root:
        forms.append(("by IP address", dict(
            spalloc_machine=MACHINE, spalloc_ip_address=root)))
    for name, settings in forms:
        def one(settings=settings):
            fresh_job_settings(**settings)
            j = client.create_job()
            try:
                assert until_ready(j) == SpallocState.READY
                assert (0, 0) in j.get_connections()
            finally:
                j.destroy("done")
        check(f"create a job {name}, ready, destroy")(one)

    def at_root_board():
        fresh_job_settings(spalloc_machine=MACHINE, spalloc_triad="0,0,0",
                           spalloc_width=1, spalloc_height=1)
        try:
            j = client.create_job()
        except SpallocBoardUnavailableException:
            return "refused"
        until_ready(j)
        j.destroy("done")
        return "served"
    if time.monotonic() < deadline:
        try:
            outcome = at_root_board()
            if outcome == "refused":
                print("KNOWN spinnman: dimensions at a root board are not "
                      "served (a clear 400, as documented)", flush=True)
            else:
                report(True, "create a job by dimensions at a root board")
        except Exception as e:
            report(False, "create a job by dimensions at a root board",
                   f"{type(e).__name__}: {e}")

    # -- the session survives a server restart (§7)
    fresh_job_settings()
    survivor = check("create a job before a restart")(client.create_job)
    if survivor:
        until_ready(survivor)
        server.stop()
        check("our server restarts on the same state file")(
            server.start, http_port)
        check("the same session lists machines after the restart")(
            lambda: expect(MACHINE in client.list_machines(), "missing"))
        check("the job is READY after the restart")(
            lambda: expect(survivor.get_state() == SpallocState.READY, "no"))
        check("the same session destroys the job after the restart")(
            survivor.destroy, "after restart")
    client.close()

    # -- token log-in (§3.2): GETs then carry only the session cookie
    by_token = check("log in with a bearer token")(
        lambda: SpallocClient(url, bearer_token=token))
    if by_token:
        check("list machines with a token session")(
            lambda: expect(MACHINE in by_token.list_machines(), "missing"))

        def token_job():
            fresh_job_settings()
            j = by_token.create_job()
            assert until_ready(j) == SpallocState.READY
            assert j.get_root_host()
            listed = list(by_token.list_jobs())
            stop_keepalives(listed)
            assert j._url in [x._url for x in listed]
            j.destroy("done")
            assert j.get_state() == SpallocState.DESTROYED
        check("create, wait, read, list and destroy with a token")(token_job)
        by_token.close()

    # -- refused log-ins, after the successes (3 failures lock an account)
    def refused(password, expect):
        try:
            SpallocClient(url, USER, password)
        except SpallocException as e:
            assert expect in str(e), str(e)
            return
        raise AssertionError("logged in with a wrong password")
    check("a wrong password is refused with the server's message")(
        refused, "not the password", "Unable to login: computer says no")

    def bad_token():
        try:
            SpallocClient(url, bearer_token="spalloc_" + "0" * 64)
        except SpallocException as e:
            assert "Could not renew session" in str(e), str(e)
            return
        raise AssertionError("logged in with a bad token")
    check("a bad token is refused")(bad_token)


if __name__ == "__main__":
    sys.exit(main())
