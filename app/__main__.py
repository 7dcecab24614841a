"""`python -m app [--weights cifar_net.pth] [--host H] [--port P] [--workers N]`: serve the app."""

import argparse
import os

import uvicorn

from app.web.middleware.logs import uvicorn_log_config
from app.web.settings import get_settings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    parser.add_argument("--weights", help="a state_dict of the tutorial's Net (APP_WEIGHTS)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="APP_DEVICE")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "1")))
    args = parser.parse_args()
    if args.weights:
        os.environ["APP_WEIGHTS"] = os.path.abspath(args.weights)
    if args.device:
        os.environ["APP_DEVICE"] = args.device
    uvicorn.run(
        "app.main:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,  # the app logs each request itself
        log_config=uvicorn_log_config(get_settings().log_json),
    )


if __name__ == "__main__":
    main()
