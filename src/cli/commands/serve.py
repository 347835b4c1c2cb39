"""`serve [--port P]`: the local inference API on 127.0.0.1 (src/api/server.py)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="local inference API on 127.0.0.1 (token printed at start)")
    p.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0: a free one)")
    p.add_argument("--device", default="auto", help="auto, cpu, 0, cuda:0, mps")
    p.add_argument("--max-upload-mb", type=float, default=20.0,
                   help="largest request body accepted, in MiB")
    p.set_defaults(handler=_serve)


def _serve(args) -> int:
    from src.cli.commands.train import quiet_ultralytics
    quiet_ultralytics()
    from src.api.server import HOST, bind, create_app, make_server, new_token
    from src.db.project import Project
    from src.errors import LabelLoopError
    if not 0 <= args.port <= 65535:
        raise LabelLoopError(f"port {args.port} is not 0..65535", field="--port")
    if args.max_upload_mb <= 0:
        raise LabelLoopError("--max-upload-mb must be positive", field="--max-upload-mb")
    Project.open(args.project, create=False).close()       # refuse a missing project now
    token = new_token()
    app = create_app(args.project, token, device=args.device,
                     max_body_bytes=int(args.max_upload_mb * 1024 * 1024))
    sock = bind(args.port)
    port = sock.getsockname()[1]
    print(f"LabelLoop API on http://{HOST}:{port}  (project {args.project})")
    print(f"token: {token}")
    print(f"try: curl -H 'Authorization: Bearer {token}' http://{HOST}:{port}/models",
          flush=True)
    make_server(app, sock, log_level="warning").run(sockets=[sock])
    return 0
