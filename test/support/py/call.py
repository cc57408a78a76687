"""A worker that runs calls on MLflow's real Python clients, one JSON request per stdin line.

Importing MLflow takes seconds, so the harness keeps one worker per MLflow version and sends it
requests; it exits when stdin closes.

request:  {"env": {...}, "tracking_uri": str, "calls": [{"client": "auth" | "tracking" | "mlflow",
           "method": str, "args": [...], "kwargs": {...}, "paged": bool}]}
response: {"results": [{"ok": <value>} | {"error": {"type", "error_code", "status", "message"}}]}

With "paged": true the value (a search's PagedList, which is a list) is returned as
{"items": [...], "token": <next page token or null>}; without it a PagedList is a plain list.

"env" replaces the client-auth part of the environment for that request only: MLflow reads
MLFLOW_TRACKING_* and HOME (~/.mlflow/credentials) on every request, as a user's script would.
"""

import json
import sys


def to_plain(value):
    """Turn MLflow entities into JSON-able data without knowing every entity class."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_plain(v) for v in value]
    if hasattr(value, "to_json") and callable(value.to_json):
        return to_plain(value.to_json())
    if hasattr(value, "to_proto"):
        from google.protobuf.json_format import MessageToDict

        return MessageToDict(value.to_proto(), preserving_proto_field_name=True)
    if hasattr(value, "to_dictionary"):
        return to_plain(value.to_dictionary())
    if hasattr(value, "__iter__"):
        result = [to_plain(v) for v in value]
        token = getattr(value, "token", None)
        return {"items": result, "token": token} if token is not None else result
    return repr(value)


def describe_error(exc):
    status = None
    code = getattr(exc, "error_code", None)
    if hasattr(exc, "get_http_status_code"):
        try:
            status = exc.get_http_status_code()
        except Exception:
            status = None
    response = getattr(exc, "response", None)
    if response is not None and getattr(response, "status_code", None) is not None:
        status = response.status_code
    return {"type": type(exc).__name__, "error_code": code, "status": status, "message": str(exc)}


def run(request, mlflow, get_app_client, MlflowClient):
    uri = request["tracking_uri"]
    mlflow.set_tracking_uri(uri)
    clients = {}

    def client(kind):
        if kind not in clients:
            if kind == "auth":
                clients[kind] = get_app_client("basic-auth", tracking_uri=uri)
            elif kind == "tracking":
                clients[kind] = MlflowClient(tracking_uri=uri)
            elif kind == "mlflow":
                clients[kind] = mlflow
            else:
                raise ValueError(f"unknown client {kind!r}")
        return clients[kind]

    results = []
    for call in request["calls"]:
        try:
            method = getattr(client(call["client"]), call["method"])
            value = method(*call.get("args", []), **call.get("kwargs", {}))
            if call.get("paged"):
                page = {"items": [to_plain(v) for v in value], "token": getattr(value, "token", None)}
                results.append({"ok": page})
            else:
                results.append({"ok": to_plain(value)})
        except Exception as exc:  # every failure is data for the test to assert on
            results.append({"error": describe_error(exc)})
    return {"results": results}


def main():
    import os

    import mlflow
    from mlflow.server import get_app_client
    from mlflow.tracking import MlflowClient

    base_env = dict(os.environ)
    print(json.dumps({"ready": mlflow.__version__}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        os.environ.clear()
        os.environ.update(base_env)
        os.environ.update(request.get("env", {}))
        try:
            response = run(request, mlflow, get_app_client, MlflowClient)
        except Exception as exc:
            response = {"fatal": describe_error(exc)}
        finally:
            mlflow.set_tracking_uri(None)
        print(json.dumps(response), flush=True)


if __name__ == "__main__":
    main()
