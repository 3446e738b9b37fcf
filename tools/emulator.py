"""The AWS emulator the deployer's tests, the bench and `cargo xtask emulator` run: moto's server,
configured as the deployer needs it, plus the one piece of Lambda that moto leaves out.

Real Lambda answers GetFunction with `Code.Location`, a presigned URL from which the function's
zip can be downloaded; `cargo xtask promote` downloads it and checks its SHA-256. moto returns a
URL on amazonaws.com that nothing serves. Here each Location points at a small HTTP server in this
process that returns exactly the bytes moto holds for that version, so promote runs the same code
path against the emulator as against AWS.

Usage: python tools/emulator.py [-H 127.0.0.1] [-p 5000]
"""

import base64
import http.server
import os
import sys
import threading

# Load AWS managed policies (AWSLambdaBasicExecutionRole and friends) so roles can attach them.
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

from moto.awslambda import models as lambda_models  # noqa: E402
from moto.core.config import default_user_config  # noqa: E402
from moto.server import main  # noqa: E402

# Lambda invocations without Docker: moto answers them itself.
default_user_config["lambda"] = {"use_docker": False}

# Code by its base64url SHA-256, as every version's Location names it.
CODE: dict[str, bytes] = {}
CODE_LOCK = threading.Lock()


class CodeHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        key = self.path.rsplit("/", 1)[-1]
        with CODE_LOCK:
            body = CODE.get(key)
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve_code(host: str) -> int:
    server = http.server.ThreadingHTTPServer((host, 0), CodeHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def patch_code_location(host: str, port: int) -> None:
    original = lambda_models.LambdaFunction.get_code

    def get_code(self: lambda_models.LambdaFunction) -> dict:
        response = original(self)
        code = response.get("Code")
        if code is not None and code.get("RepositoryType") == "S3" and self.code_bytes:
            key = base64.urlsafe_b64encode(base64.b64decode(self.code_sha_256)).decode().rstrip("=")
            with CODE_LOCK:
                CODE[key] = self.code_bytes
            code["Location"] = f"http://{host}:{port}/code/{key}"
        return response

    lambda_models.LambdaFunction.get_code = get_code


if __name__ == "__main__":
    args = sys.argv[1:]
    host = args[args.index("-H") + 1] if "-H" in args else "127.0.0.1"
    patch_code_location(host, serve_code(host))
    main(args)
