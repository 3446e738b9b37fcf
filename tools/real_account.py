"""What a real AWS account does that moto does not: quotas, waits and eventual consistency.

Each behaviour below is taken from AWS's published behaviour, scaled to seconds so that tests
meet it on every run. `tools/emulator.py` switches all of them on unless it runs with `--plain`.

- API Gateway's control plane has fixed quotas that cannot be raised (developer guide, "API
  Gateway quotas"): CreateDeployment 1 per 5 s, CreateRestApi 1 per 3 s, DeleteRestApi 1 per 30 s,
  CreateResource and DeleteResource 5 per s, GetResources 5 per 2 s, all operations together 10
  per s with a burst of 40. Over a quota it answers 429 `TooManyRequestsException`, with
  `Retry-After`. `quota_scale` shortens the periods (0.1: DeleteRestApi 1 per 3 s).
- Lambda: a new function is `State: Pending` for a moment, an updated one `LastUpdateStatus:
  InProgress`, and a new version `Pending` too. In that window an update or PublishVersion gets
  409 `ResourceConflictException`, and invoking a pending version is refused the same way.
- IAM is eventually consistent: for a few seconds after CreateRole, CreateFunction with that role
  fails with `InvalidParameterValueException` "The role defined for the function cannot be
  assumed by Lambda."
- RDS: a new cluster or instance is `creating` for a while, a modified cluster `modifying`; a
  cluster that is not `available` refuses ModifyDBCluster, and an instance that is not refuses
  DeleteDBInstance (`InvalidDBClusterStateFault`, `InvalidDBInstanceState`).
- Without `lambda:ListTags`, GetFunction answers without `Tags` and with `TagsError`; the emulator
  denies it after `POST /moto-api/emulator/deny` with `{"Action": "lambda:ListTags"}`.
"""

import json
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from moto.awslambda import models as lambda_models
from moto.awslambda.exceptions import InvalidParameterValueException, LambdaClientError
from moto.awslambda_simple import models as lambda_simple_models
from moto.iam import models as iam_models
from moto.moto_api._internal import urls as moto_api_urls
from moto.rds import models as rds_models
from moto.rds.exceptions import RDSClientError


@dataclass
class Timings:
    """How long each transitional state lasts, in seconds, and how API Gateway's quota periods scale."""

    cluster_creating: float = 4.0
    instance_creating: float = 4.0
    cluster_modifying: float = 2.0
    lambda_pending: float = 0.5
    role_propagation: float = 3.0
    quota_scale: float = 1.0


# --- API Gateway quotas -------------------------------------------------------------------------


class Bucket:
    """A token bucket: `burst` tokens, refilled at `rate` per second."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst, self.tokens, self.at = rate, burst, burst, time.monotonic()

    def refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def wait(self) -> float:
        """Seconds until one token is there (0: now)."""
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


def operation(method: str, path: str) -> str | None:
    """The API Gateway operation of a request, for the ones with a quota of their own."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] != ["restapis"]:
        return None
    if len(parts) == 1:
        return "CreateRestApi" if method == "POST" else None
    if len(parts) == 2:
        return "DeleteRestApi" if method == "DELETE" else None
    if parts[2] == "deployments" and len(parts) == 3 and method == "POST":
        return "CreateDeployment"
    if parts[2] == "resources":
        if len(parts) == 3 and method == "GET":
            return "GetResources"
        if len(parts) == 4 and method == "POST":
            return "CreateResource"
        if len(parts) == 4 and method == "DELETE":
            return "DeleteResource"
    return None


class Quotas:
    """WSGI middleware answering API Gateway control-plane calls over quota with 429."""

    def __init__(self, app: Callable, scale: float) -> None:
        self.app = app
        self.lock = threading.Lock()
        per = lambda count, seconds: Bucket(count / (seconds * scale), count)  # noqa: E731
        self.buckets = {
            "CreateDeployment": per(1, 5),
            "CreateRestApi": per(1, 3),
            "DeleteRestApi": per(1, 30),
            "CreateResource": per(5, 1),
            "DeleteResource": per(5, 1),
            "GetResources": per(5, 2),
        }
        self.all = Bucket(10 / scale, 40)

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        if "/apigateway/aws4_request" not in environ.get("HTTP_AUTHORIZATION", ""):
            return self.app(environ, start_response)
        op = operation(environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""))
        with self.lock:
            now = time.monotonic()
            buckets = [self.all] + ([self.buckets[op]] if op in self.buckets else [])
            for bucket in buckets:
                bucket.refill(now)
            wait = max(bucket.wait() for bucket in buckets)
            if wait == 0:
                for bucket in buckets:
                    bucket.tokens -= 1
        if wait > 0:
            body = json.dumps({"message": "Too Many Requests"}).encode()
            start_response(
                "429 Too Many Requests",
                [
                    ("Content-Type", "application/json"),
                    ("x-amzn-ErrorType", "TooManyRequestsException"),
                    ("Retry-After", str(max(1, math.ceil(wait)))),
                    ("Content-Length", str(len(body))),
                ],
            )
            return [body]
        return self.app(environ, start_response)


# --- Lambda states, IAM propagation -------------------------------------------------------------

# (function name, version) -> ("create" | "update", until)
BUSY: dict[tuple[str, str], tuple[str, float]] = {}
ROLES_CREATED: dict[str, float] = {}
DENIED: set[str] = set()
LOCK = threading.Lock()


def busy(name: str, version: str) -> str | None:
    with LOCK:
        entry = BUSY.get((name, version))
    if entry is None or time.monotonic() >= entry[1]:
        return None
    return entry[0]


def set_busy(name: str, version: str, kind: str, seconds: float) -> None:
    with LOCK:
        BUSY[(name, version)] = (kind, time.monotonic() + seconds)


def conflict(fn: Any, kind: str) -> LambdaClientError:
    if kind == "create":
        message = "The operation cannot be performed at this time. The function is currently in the following state: Pending"
    else:
        message = f"The operation cannot be performed at this time. An update is in progress for resource: {fn.function_arn}"
    error = LambdaClientError("ResourceConflictException", message)
    error.code = 409
    return error


def patch_lambda(t: Timings) -> None:
    function = lambda_models.LambdaFunction
    backend = lambda_models.LambdaBackend
    original_config = function.get_configuration

    def get_configuration(self: Any, on_create: bool = False) -> dict:
        config = original_config(self, on_create)
        state = busy(self.function_name, str(self.version))
        if state == "create":
            config.update(State="Pending", StateReason="The function is being created.", StateReasonCode="Creating")
        elif state == "update":
            config.update(LastUpdateStatus="InProgress", LastUpdateStatusReason="The function is being updated.")
            config["LastUpdateStatusReasonCode"] = "InProgress"
        return config

    function.get_configuration = get_configuration

    original_code = function.get_code

    def get_code(self: Any) -> dict:
        response = original_code(self)
        if "lambda:ListTags" in DENIED:
            response.pop("Tags", None)
            response["TagsError"] = {
                "ErrorCode": "AccessDeniedException",
                "Message": f"User is not authorized to perform: lambda:ListTags on resource: {self.function_arn}",
            }
        return response

    function.get_code = get_code

    original_create = backend.create_function

    def create_function(self: Any, spec: dict) -> Any:
        role = spec.get("Role", "")
        with LOCK:
            created = ROLES_CREATED.get(role)
        if created is not None and time.monotonic() < created + t.role_propagation:
            raise InvalidParameterValueException("The role defined for the function cannot be assumed by Lambda.")
        fn = original_create(self, spec)
        set_busy(fn.function_name, "$LATEST", "create", t.lambda_pending)
        return fn

    backend.create_function = create_function

    def guarded(name: str, kind: str) -> None:
        original = getattr(backend, name)

        def call(self: Any, function_name: str, *args: Any, **kwargs: Any) -> Any:
            fn = self.get_function(function_name, None)
            state = busy(fn.function_name, "$LATEST")
            if state is not None:
                raise conflict(fn, state)
            result = original(self, function_name, *args, **kwargs)
            if kind == "update":
                set_busy(fn.function_name, "$LATEST", "update", t.lambda_pending)
            elif result is not None:
                set_busy(fn.function_name, str(result.version), "create", t.lambda_pending)
            return result

        setattr(backend, name, call)

    guarded("update_function_code", "update")
    guarded("update_function_configuration", "update")
    guarded("publish_version", "publish")

    # Without Docker, moto's Lambda is the simple backend, which has its own invoke.
    simple = lambda_simple_models.LambdaSimpleBackend
    original_invoke = simple.invoke

    def invoke(self: Any, function_name: str, qualifier: str | None, *args: Any) -> Any:
        fn = self.get_function(function_name, qualifier)
        if busy(fn.function_name, str(fn.version)) == "create":
            raise conflict(fn, "create")
        return original_invoke(self, function_name, qualifier, *args)

    simple.invoke = invoke


def patch_iam() -> None:
    original = iam_models.IAMBackend.create_role

    def create_role(self: Any, *args: Any, **kwargs: Any) -> Any:
        role = original(self, *args, **kwargs)
        with LOCK:
            ROLES_CREATED[role.arn] = time.monotonic()
        return role

    iam_models.IAMBackend.create_role = create_role


# --- RDS states ---------------------------------------------------------------------------------

# ("cluster" | "instance", identifier) -> (transitional status, until)
RDS_STATES: dict[tuple[str, str], tuple[str, float]] = {}


def rds_status(kind: str, identifier: str) -> str:
    with LOCK:
        entry = RDS_STATES.get((kind, identifier))
    if entry is None or time.monotonic() >= entry[1]:
        return "available"
    return entry[0]


def set_rds_status(kind: str, identifier: str, status: str, seconds: float) -> None:
    with LOCK:
        RDS_STATES[(kind, identifier)] = (status, time.monotonic() + seconds)


def patch_rds(t: Timings) -> None:
    backend = rds_models.RDSBackend
    create_cluster, modify_cluster = backend.create_db_cluster, backend.modify_db_cluster
    create_instance, delete_instance = backend.create_db_instance, backend.delete_db_instance
    describe_clusters, describe_instances = backend.describe_db_clusters, backend.describe_db_instances

    def create_db_cluster(self: Any, kwargs: dict) -> Any:
        cluster = create_cluster(self, kwargs)
        set_rds_status("cluster", kwargs["db_cluster_identifier"], "creating", t.cluster_creating)
        cluster.status = "creating"
        return cluster

    def modify_db_cluster(self: Any, kwargs: dict) -> Any:
        identifier = kwargs["db_cluster_identifier"]
        status = rds_status("cluster", identifier)
        if identifier in self.clusters and status != "available":
            raise RDSClientError(
                "InvalidDBClusterStateFault", f"DB cluster {identifier} is not available for modification with status {status}"
            )
        cluster = modify_cluster(self, kwargs)
        set_rds_status("cluster", identifier, "modifying", t.cluster_modifying)
        cluster.status = "modifying"
        return cluster

    def create_db_instance(self: Any, kwargs: dict) -> Any:
        instance = create_instance(self, kwargs)
        set_rds_status("instance", kwargs["db_instance_identifier"], "creating", t.instance_creating)
        instance.status = "creating"
        return instance

    def delete_db_instance(self: Any, *args: Any, **kwargs: Any) -> Any:
        identifier = kwargs.get("db_instance_identifier", args[0] if args else "")
        status = rds_status("instance", identifier)
        if identifier in self.databases and status != "available":
            raise RDSClientError("InvalidDBInstanceState", f"Instance {identifier} is not in available state.")
        return delete_instance(self, *args, **kwargs)

    def describe_db_clusters(self: Any, *args: Any, **kwargs: Any) -> Any:
        clusters = describe_clusters(self, *args, **kwargs)
        for cluster in clusters:
            cluster.status = rds_status("cluster", cluster.db_cluster_identifier)
        return clusters

    def describe_db_instances(self: Any, *args: Any, **kwargs: Any) -> Any:
        instances = describe_instances(self, *args, **kwargs)
        for instance in instances:
            instance.status = rds_status("instance", instance.db_instance_identifier)
        return instances

    backend.create_db_cluster, backend.modify_db_cluster = create_db_cluster, modify_db_cluster
    backend.create_db_instance, backend.delete_db_instance = create_db_instance, delete_db_instance
    backend.describe_db_clusters, backend.describe_db_instances = describe_db_clusters, describe_db_instances


def patch_denials() -> None:
    def deny(request: Any, full_url: str, headers: dict) -> tuple[int, dict, str]:
        size = int(headers.get("Content-Length") or 0)
        body = json.loads(request.environ["wsgi.input"].read(size).decode() or "{}")
        with LOCK:
            if body.get("Allow"):
                DENIED.discard(body["Allow"])
            if body.get("Action"):
                DENIED.add(body["Action"])
        return 200, {}, "{}"

    moto_api_urls.url_paths["{0}/moto-api/emulator/deny"] = deny


def install(t: Timings) -> None:
    """Patches moto's models; the API Gateway quotas are a WSGI middleware: see `Quotas`."""
    patch_lambda(t)
    patch_iam()
    patch_rds(t)
    patch_denials()
