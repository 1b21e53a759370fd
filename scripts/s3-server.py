#!/usr/bin/env python3
"""Single-threaded moto S3 server for the test suite.

Usage:
    .venv-s3/bin/python scripts/s3-server.py [PORT] [--host HOST] [--exit-on-stdin-eof]

PORT comes from the first argument, else $S3_PORT, else $MOTO_PORT, else 0
(0 = let the OS choose a free port). The actual port is printed on the ready
line, which is the only thing written to stdout:

    S3_SERVER_READY http://127.0.0.1:PORT

Why single-threaded: moto's S3 PutObject checks If-None-Match / If-Match and
then stores the key without holding any lock (moto/s3/responses.py
put_object: get_object() ... backend.put_object()), so under the threaded
server two racing conditional writes can both pass the check. With
werkzeug's BaseWSGIServer (threaded=False) requests are handled strictly one
at a time, so each conditional write is atomic with respect to every other
request.

This mirrors moto.server.main() (DomainDispatcherApplication(create_backend_app)
+ MotoRequestHandler) but with threaded=False. It uses werkzeug's
make_server() + serve_forever(), which is exactly what run_simple() does
internally (without the reloader/debugger), so that the ready line can be
printed after the socket is bound and report the real port when PORT is 0.

Note: with threaded=False werkzeug keeps the handler at HTTP/1.0, i.e. the
server closes the connection after every response. That is what we want: a
single-threaded server with HTTP/1.1 keep-alive would be stalled by any
client holding an idle keep-alive connection.

--exit-on-stdin-eof: exit as soon as stdin reaches EOF. The Node test helper
spawns the server with a pipe on stdin, so the server dies with its parent
even if the parent is SIGKILLed. Do not use it when stdin is /dev/null.
"""

import argparse
import os
import signal
import sys
import threading


def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", nargs="?", type=int, default=None)
    parser.add_argument("--host", default=os.environ.get("S3_HOST", "127.0.0.1"))
    parser.add_argument(
        "--exit-on-stdin-eof",
        action="store_true",
        default=os.environ.get("S3_SERVER_EXIT_ON_STDIN_EOF") == "1",
    )
    parser.add_argument(
        "--log-requests",
        action="store_true",
        default=os.environ.get("S3_SERVER_LOG_REQUESTS") == "1",
        help="log every request to stderr (werkzeug access log)",
    )
    args = parser.parse_args(argv)
    if args.port is None:
        args.port = int(os.environ.get("S3_PORT") or os.environ.get("MOTO_PORT") or 0)
    return args


def _watch_stdin():
    try:
        while os.read(0, 65536):
            pass
    except OSError:
        pass
    # Parent went away (or closed our stdin on purpose): leave immediately.
    os._exit(0)


def main(argv=None):
    args = _parse_args(sys.argv[1:] if argv is None else argv)

    if args.exit_on_stdin_eof:
        threading.Thread(target=_watch_stdin, name="stdin-eof", daemon=True).start()

    def _exit(signum, frame):
        sys.exit(0)

    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, _exit)

    # Import after the stdin watcher is running: importing moto takes ~1 s.
    from werkzeug.serving import make_server
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )

    class Handler(MotoRequestHandler):
        def log_request(self, code="-", size="-"):
            if args.log_requests:
                super().log_request(code, size)

    app = DomainDispatcherApplication(create_backend_app)
    # threaded=False, processes=1: werkzeug BaseWSGIServer, one request at a time.
    server = make_server(args.host, args.port, app, threaded=False, processes=1,
                         request_handler=Handler)
    assert not server.multithread and not server.multiprocess
    port = server.socket.getsockname()[1]
    # moto uses MOTO_PORT when it has to build URLs pointing at itself.
    os.environ["MOTO_PORT"] = str(port)
    print(f"S3_SERVER_READY http://{args.host}:{port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
