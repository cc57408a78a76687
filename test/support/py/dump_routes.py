"""Every route the installed MLflow serves: Flask url_map and FastAPI routes (recursing into included routers)."""
import json, os, sys, warnings
warnings.filterwarnings("ignore")
os.environ["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
from mlflow.server import app
out = []
for rule in app.url_map.iter_rules():
    out.append({"source": "flask", "path": rule.rule, "methods": sorted(m for m in rule.methods if m not in ("HEAD", "OPTIONS"))})
from mlflow.server.fastapi_app import create_fastapi_app
def walk(routes, prefix=""):
    for route in routes:
        if hasattr(route, "original_router"):
            walk(route.original_router.routes, prefix + (route.include_context.prefix or ""))
        elif type(route).__name__ == "Mount":
            continue  # the Flask app, dumped above
        else:
            out.append({"source": "fastapi", "path": prefix + route.path, "methods": sorted(m for m in (getattr(route, "methods", None) or ["GET"]) if m not in ("HEAD", "OPTIONS"))})
walk(create_fastapi_app(app).routes)
json.dump(out, sys.stdout, indent=1)
