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

What runs for real (see `data_plane.py` and `aurora.py`): every Invoke and every request to a
deployed stage (`/restapis/<api>/<stage>/_user_request_/...`) runs the function version's own
`bootstrap` from its zip under a Lambda Runtime API, and each DB cluster is a real PostgreSQL on a
loopback address of its own, with the master password of its RDS-managed secret. Rotating that
secret (RotateSecret, or ModifyDBCluster with RotateMasterUserPassword) changes the database's
password too, as RDS does.

Real-account behaviour (quotas, Lambda and RDS states, IAM's propagation delay): see
`real_account.py`. It is on unless `--plain` is given; its durations are flags.

Usage: python tools/emulator.py [-H 127.0.0.1] [-p 5000 | -p 0] [--plain] [--jwks FILE] [--quota-scale 1.0]
         [--cluster-creating 4] [--instance-creating 4] [--cluster-modifying 2]
         [--lambda-pending 0.5] [--role-propagation 3]
"""

import argparse
import base64
import dataclasses
import http
import http.server
import json
import os
import secrets
import signal
import sys
import threading
from urllib.parse import unquote

# Load AWS managed policies (AWSLambdaBasicExecutionRole and friends) so roles can attach them.
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

from moto.apigateway import responses as apigateway_responses  # noqa: E402
from moto.apigateway import urls as apigateway_urls  # noqa: E402
from moto.apigateway.models import apigateway_backends  # noqa: E402
from moto.awslambda import models as lambda_models  # noqa: E402
from moto.awslambda import responses as lambda_responses  # noqa: E402
from moto.awslambda_simple import models as lambda_simple_models  # noqa: E402
from moto.core.config import default_user_config  # noqa: E402
from moto.rds import models as rds_models  # noqa: E402
from moto.rds.exceptions import RDSClientError  # noqa: E402
from moto.secretsmanager import models as secretsmanager_models  # noqa: E402
from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

import aurora  # noqa: E402
import data_plane  # noqa: E402
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


def patch_lambda_invoke() -> None:
    """Invoke runs the function version's code (data_plane.py), not moto's echo."""

    def invoke(self: object, function_name: str, qualifier: str | None, body: object, headers: dict,
               response_headers: dict) -> bytes:
        function, invoked = data_plane.resolve(self, function_name, qualifier)
        payload = body.encode() if isinstance(body, str) else (body or b"{}")
        outcome = data_plane.invoke(function, invoked, payload)
        if outcome.kind != "ok":
            response_headers["x-amz-function-error"] = "Unhandled"
        response_headers["x-amz-executed-version"] = str(function.version)
        tail = outcome.log.encode()[-data_plane.LOG_TAIL_BYTES:]
        response_headers["x-amz-log-result"] = base64.b64encode(tail).decode()
        return outcome.error_payload()

    lambda_simple_models.LambdaSimpleBackend.invoke = invoke

    def invoke_request(self: lambda_responses.LambdaResponse) -> tuple[int, dict[str, str], bytes]:
        # moto reads the qualifier as `qualifier`; the API's query parameter is `Qualifier`, so
        # moto ran $LATEST whatever version or alias was asked for.
        response_headers: dict[str, str] = {"content-type": "application/json"}
        function_name = unquote(self.path.rsplit("/", 2)[-2])
        qualifier = self._get_param("Qualifier")
        payload = self.backend.invoke(function_name, qualifier, self.body, self.headers, response_headers)
        if self.headers.get("X-Amz-Log-Type") != "Tail":
            response_headers.pop("x-amz-log-result", None)
        status = {"Event": 202, "DryRun": 204}.get(self.headers.get("X-Amz-Invocation-Type", ""), 200)
        return status, response_headers, payload

    lambda_responses.LambdaResponse.invoke = invoke_request


def patch_aurora() -> None:
    """Each DB cluster is a real PostgreSQL (aurora.py) with its managed secret's credentials."""
    secret_class = rds_models.MasterUserSecret

    def secret_string(self: rds_models.MasterUserSecret) -> str:
        # RDS's managed secret: the master user's name and a generated password (moto: a fixed one).
        return json.dumps({"username": self.resource.master_username, "password": new_password()})

    secret_class._generate_secret_string = secret_string

    def rotate(self: rds_models.MasterUserSecret) -> None:
        rotate_master_password(self.secretsmanager, self.secret.arn, self.resource.arn)

    secret_class.rotate_secret = rotate

    backend = rds_models.RDSBackend
    create_cluster, delete_cluster = backend.create_db_cluster, backend.delete_db_cluster
    describe_clusters = backend.describe_db_clusters

    def create_db_cluster(self: rds_models.RDSBackend, kwargs: dict) -> object:
        cluster = create_cluster(self, kwargs)
        if getattr(cluster, "manage_master_user_password", False):
            password = json.loads(cluster.master_user_secret.secret.secret_string)["password"]
        else:
            password = cluster.master_user_password
        aurora.create(cluster.db_cluster_arn, cluster.master_username, password, cluster.database_name or "postgres")
        return cluster

    def delete_db_cluster(self: rds_models.RDSBackend, *args: object, **kwargs: object) -> object:
        cluster = delete_cluster(self, *args, **kwargs)
        threading.Thread(target=aurora.delete, args=(cluster.db_cluster_arn,), daemon=True).start()
        return cluster

    def describe_db_clusters(self: rds_models.RDSBackend, *args: object, **kwargs: object) -> object:
        clusters = describe_clusters(self, *args, **kwargs)
        for cluster in clusters:
            server = aurora.server(cluster.db_cluster_arn)
            if server is not None and not server.ready.is_set():
                cluster.status = "creating"
            elif server is not None and server.error is not None:
                cluster.status = "incompatible-parameters"
        return clusters

    backend.create_db_cluster, backend.delete_db_cluster = create_db_cluster, delete_db_cluster
    backend.describe_db_clusters = describe_db_clusters

    endpoint = rds_models.DBCluster.endpoint

    def cluster_endpoint(self: rds_models.DBCluster) -> str:
        server = aurora.server(self.db_cluster_arn)
        return server.address if server is not None else endpoint.fget(self)

    rds_models.DBCluster.endpoint = property(cluster_endpoint)

    rotate_secret = secretsmanager_models.SecretsManagerBackend.rotate_secret

    def rotate_managed_secret(self: secretsmanager_models.SecretsManagerBackend, secret_id: str, *args: object,
                              **kwargs: object) -> str:
        secret = self.secrets.get(secret_id) if self._is_valid_identifier(secret_id) else None
        tags = {t["Key"]: t["Value"] for t in (getattr(secret, "tags", None) or [])}
        cluster_arn = tags.get("aws:rds:primaryDBClusterArn")
        if cluster_arn is None:
            return rotate_secret(self, secret_id, *args, **kwargs)
        rotate_master_password(self, secret.arn, cluster_arn)
        return secret.to_short_dict()

    secretsmanager_models.SecretsManagerBackend.rotate_secret = rotate_managed_secret


def new_password() -> str:
    return secrets.token_urlsafe(24)


def rotate_master_password(secretsmanager: object, secret_arn: str, cluster_arn: str) -> None:
    """RDS's managed rotation: a new password on the database, then in the secret (AWSCURRENT)."""
    secret = secretsmanager.secrets[secret_arn]
    credentials = json.loads(secret.secret_string)
    credentials["password"] = new_password()
    server = aurora.server(cluster_arn)
    if server is not None:
        server.rotate_password(credentials["password"])
    secretsmanager.put_secret_value(secret_arn, json.dumps(credentials), None, None, ["AWSCURRENT"])


class DataPlane:
    """Requests to a deployed stage are served by the API as deployed (data_plane.py); with
    `--jwks`, `/.well-known/jwks.json` serves an identity provider's keys; the rest goes to moto."""

    def __init__(self, app: object, jwks: str | None) -> None:
        self.app, self.jwks = app, jwks

    def __call__(self, environ: dict, start_response: object) -> object:
        if self.jwks is not None and environ.get("PATH_INFO") == "/.well-known/jwks.json":
            with open(self.jwks, "rb") as keys:
                body = keys.read()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        target = data_plane.stage_request(environ)
        if target is None:
            return self.app(environ, start_response)
        api_id, stage, path = target
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = [(k[5:].replace("_", "-").title(), v) for k, v in environ.items() if k.startswith("HTTP_")]
        for key, name in (("CONTENT_TYPE", "Content-Type"), ("CONTENT_LENGTH", "Content-Length")):
            if environ.get(key):
                headers.append((name, environ[key]))
        account = default_account()
        region = "us-east-1"
        for backend_region, backend in apigateway_backends[account].items():
            if api_id in backend.apis:
                region = backend_region
        answer = data_plane.serve_stage(
            apigateway_backends[account][region], lambda acct, reg: lambda_simple_models.lambda_simple_backends[acct][reg],
            api_id, stage, environ["REQUEST_METHOD"], path, environ.get("QUERY_STRING", ""), headers, body,
            environ.get("REMOTE_ADDR", "127.0.0.1"),
        )
        reason = http.HTTPStatus(answer.status).phrase if answer.status in http.HTTPStatus._value2member_map_ else ""
        answer.headers.append(("Content-Length", str(len(answer.body))))
        start_response(f"{answer.status} {reason}", answer.headers)
        return [answer.body]


def default_account() -> str:
    return os.environ.get("MOTO_ACCOUNT_ID", "123456789012")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="moto, plus what a real AWS account does")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000, help="0: any free port, printed on the first line")
    parser.add_argument("--plain", action="store_true", help="moto as it is: no quotas, states or delays")
    parser.add_argument("--jwks", help="a JWKS file to serve at /.well-known/jwks.json (an identity provider's keys)")
    for field in dataclasses.fields(real_account.Timings):
        flag = "--" + field.name.replace("_", "-")
        parser.add_argument(flag, type=float, default=field.default, help="seconds" if field.name != "quota_scale" else "")
    return parser.parse_args()


if __name__ == "__main__":
    args = arguments()
    patch_code_location(args.host, serve_code(args.host))
    patch_engine_version_rules()
    patch_rest_api_tags()
    patch_lambda_invoke()
    app = DomainDispatcherApplication(create_backend_app)
    if not args.plain:
        timings = real_account.Timings(**{f.name: getattr(args, f.name) for f in dataclasses.fields(real_account.Timings)})
        real_account.install(timings)
        app = real_account.Quotas(app, timings.quota_scale)
    patch_aurora()  # after real_account's RDS states: a cluster whose server is not up is "creating"
    app = DataPlane(app, args.jwks)
    # A stop (SIGTERM, Ctrl-C) runs the exit handlers: PostgreSQL servers and function instances stop and
    # their directories go. (A SIGKILL leaves the directories; the processes die with the emulator.)
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, lambda *_: sys.exit(0))
    # Bound before it is announced: whoever started this reads the port from the first line, so no
    # other process can take it in between (as it could a port picked by its starter).
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    os.environ.setdefault("MOTO_PORT", str(server.port))
    data_plane.EMULATOR_URL = f"http://{args.host}:{server.port}"
    ca_file = os.path.join(data_plane.WORK_DIR, "aurora-ca.pem")
    with open(ca_file, "wb") as out:
        out.write(aurora.CA.pem)
    os.chmod(ca_file, 0o644)
    data_plane.EMULATOR_ENVIRONMENT["DB_EXTRA_ROOT_CERT_FILE"] = ca_file
    print(f"emulator listening on http://{args.host}:{server.port}", flush=True)
    server.serve_forever()
