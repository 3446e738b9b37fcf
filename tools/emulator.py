"""The AWS emulator the deployer's tests, the bench and `cargo xtask emulator` run: moto's server,
configured as the deployer needs it, plus what a real account does that moto does not. The guiding
rule: this emulator fails the way AWS fails. Each patch below names the AWS behaviour it adds.

Lambda's code download.

Real Lambda answers GetFunction with `Code.Location`, a presigned URL from which the function's
zip can be downloaded; `cargo xtask promote` downloads it and checks its SHA-256. moto returns a
URL on amazonaws.com that nothing serves. Here each Location points at a small HTTP server in this
process that returns exactly the bytes moto holds for that version, so promote runs the same code
path against the emulator as against AWS.

RDS engine versions. A real account refuses to move an Aurora cluster to an older engine version
(`InvalidParameterCombination: Cannot upgrade aurora-postgresql from 16.6 to 16.4`) and a major
upgrade without `AllowMajorVersionUpgrade`; moto accepts both.

API Gateway tags on a REST API. Real API Gateway tags `arn:aws:apigateway:<region>::/restapis/<id>`
(TagResource, UntagResource); moto only routes a stage's ARN and answers an API's with an error page.

Lambda answers. moto runs no function code: its invoke echoes the request. Until the emulator runs
the deployed zips, an invocation answers what the function would: `migrate` functions (names ending
in `-migrate`) answer `{"applied": [...]}` with the versions under `migrations/`, as the real one
does after applying them; `POST /moto-api/emulator/lambda-answers` with
`{"FunctionName": <name or glob>, "Payload": <json>}` sets another answer (tests use it to make a
function misbehave).

Real-account behaviour (quotas, Lambda and RDS states, IAM's propagation delay): see
`real_account.py`. It is on unless `--plain` is given; its durations are flags.

Usage: python tools/emulator.py [-H 127.0.0.1] [-p 5000 | -p 0] [--plain] [--quota-scale 1.0]
         [--cluster-creating 4] [--instance-creating 4] [--cluster-modifying 2]
         [--lambda-pending 0.5] [--role-propagation 3]
"""

import argparse
import base64
import dataclasses
import fnmatch
import http.server
import json
import os
import sys
import threading
from pathlib import Path
from urllib.parse import unquote

# Load AWS managed policies (AWSLambdaBasicExecutionRole and friends) so roles can attach them.
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

from moto.apigateway import responses as apigateway_responses  # noqa: E402
from moto.apigateway import urls as apigateway_urls  # noqa: E402
from moto.apigateway.models import apigateway_backends  # noqa: E402
from moto.awslambda import models as lambda_models  # noqa: E402
from moto.awslambda_simple import models as lambda_simple_models  # noqa: E402
from moto.core.config import default_user_config  # noqa: E402
from moto.moto_api._internal import urls as moto_api_urls  # noqa: E402
from moto.rds import models as rds_models  # noqa: E402
from moto.rds.exceptions import RDSClientError  # noqa: E402
from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

import real_account  # noqa: E402

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


def engine_version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def patch_engine_version_rules() -> None:
    original = rds_models.RDSBackend.modify_db_cluster

    def modify_db_cluster(self: rds_models.RDSBackend, kwargs: dict) -> object:
        cluster = self.clusters.get(kwargs["db_cluster_identifier"])
        wanted = kwargs.get("engine_version")
        if cluster is not None and wanted and wanted != cluster.engine_version:
            have, want = engine_version(cluster.engine_version), engine_version(wanted)
            if want < have:
                raise RDSClientError(
                    "InvalidParameterCombination",
                    f"Cannot upgrade {cluster.engine} from {cluster.engine_version} to {wanted}",
                )
            if want[:1] != have[:1] and not kwargs.get("allow_major_version_upgrade"):
                raise RDSClientError(
                    "InvalidParameterCombination",
                    "The AllowMajorVersionUpgrade flag must be present when upgrading to a new major version.",
                )
        return original(self, kwargs)

    rds_models.RDSBackend.modify_db_cluster = modify_db_cluster


def rest_api_of(arn: str) -> str | None:
    """The id in `arn:<partition>:apigateway:<region>::/restapis/<id>`, None for any other ARN."""
    parts = arn.split("::/restapis/", 1)
    if len(parts) != 2 or "/" in parts[1]:
        return None
    return parts[1]


def patch_rest_api_tags() -> None:
    response = apigateway_responses.APIGatewayResponse
    original_tag, original_untag = response.tag_resource, response.untag_resource

    def target(self: apigateway_responses.APIGatewayResponse) -> object | None:
        api_id = rest_api_of(unquote(self.path.split("/tags/", 1)[1]))
        if api_id is None:
            return None
        return apigateway_backends[self.current_account][self.region].get_rest_api(api_id)

    def tag_resource(self: apigateway_responses.APIGatewayResponse) -> str:
        api = target(self)
        if api is None:
            return original_tag(self)
        api.tags = {**(api.tags or {}), **(self._get_param("tags") or {})}
        return "{}"

    def untag_resource(self: apigateway_responses.APIGatewayResponse) -> str:
        api = target(self)
        if api is None:
            return original_untag(self)
        for key in self.querystring.get("tagKeys") or []:
            (api.tags or {}).pop(key, None)
        return "{}"

    response.tag_resource, response.untag_resource = tag_resource, untag_resource
    # The ARN's slashes reach the server decoded: route an API's ARN as moto routes a stage's.
    apigateway_urls.url_paths[
        "{0}/tags/arn:(?P<partition>[^/]+):apigateway:(?P<region_name>[^/]+)::/restapis/(?P<function_id>[^/]+)$"
    ] = apigateway_responses.APIGatewayResponse.dispatch


# Answers by function name or glob, set through the emulator's endpoint; the newest wins.
ANSWERS: list[tuple[str, bytes]] = []
ANSWERS_LOCK = threading.Lock()


def migration_versions() -> list[int]:
    folder = Path(__file__).resolve().parent.parent / "migrations"
    return sorted(int(p.name.split("_", 1)[0]) for p in folder.glob("*.sql") if p.name.split("_", 1)[0].isdigit())


def patch_lambda_answers() -> None:
    ANSWERS.append(("*-migrate", json.dumps({"applied": migration_versions()}, separators=(",", ":")).encode()))
    original = lambda_simple_models.LambdaSimpleBackend.invoke

    def invoke(self: object, function_name: str, qualifier: str | None, body: object, *rest: object) -> bytes | None:
        name = function_name.split(":function:", 1)[-1].split(":", 1)[0]
        with ANSWERS_LOCK:
            answer = next((a for pattern, a in reversed(ANSWERS) if fnmatch.fnmatchcase(name, pattern)), None)
        if answer is None:
            return original(self, function_name, qualifier, body, *rest)
        self.get_function(function_name, qualifier)  # a missing function or version is still an error
        return answer

    lambda_simple_models.LambdaSimpleBackend.invoke = invoke

    def set_answer(request: object, full_url: str, headers: dict) -> tuple[int, dict, str]:
        size = int(headers.get("Content-Length") or 0)
        body = json.loads(request.environ["wsgi.input"].read(size).decode() or "{}")
        if not isinstance(body.get("FunctionName"), str) or "Payload" not in body:
            return 400, {}, json.dumps({"message": "expected {FunctionName, Payload}"})
        with ANSWERS_LOCK:
            ANSWERS.append((body["FunctionName"], json.dumps(body["Payload"], separators=(",", ":")).encode()))
        return 200, {}, "{}"

    moto_api_urls.url_paths["{0}/moto-api/emulator/lambda-answers"] = set_answer


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="moto, plus what a real AWS account does")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000, help="0: any free port, printed on the first line")
    parser.add_argument("--plain", action="store_true", help="moto as it is: no quotas, states or delays")
    for field in dataclasses.fields(real_account.Timings):
        flag = "--" + field.name.replace("_", "-")
        parser.add_argument(flag, type=float, default=field.default, help="seconds" if field.name != "quota_scale" else "")
    return parser.parse_args()


if __name__ == "__main__":
    args = arguments()
    patch_code_location(args.host, serve_code(args.host))
    patch_engine_version_rules()
    patch_rest_api_tags()
    patch_lambda_answers()
    app = DomainDispatcherApplication(create_backend_app)
    if not args.plain:
        timings = real_account.Timings(**{f.name: getattr(args, f.name) for f in dataclasses.fields(real_account.Timings)})
        real_account.install(timings)
        app = real_account.Quotas(app, timings.quota_scale)
    # Bound before it is announced: whoever started this reads the port from the first line, so no
    # other process can take it in between (as it could a port picked by its starter).
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    os.environ.setdefault("MOTO_PORT", str(server.port))
    print(f"emulator listening on http://{args.host}:{server.port}", flush=True)
    server.serve_forever()
