"""Wiring the dashboard into the application: pages, static assets and offline API docs."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.api.middleware.security_headers import content_security_policy, inline_script_hashes
from app.dashboard.routes import router
from app.dashboard.templating import make_templates

STATIC = Path(__file__).parent / "static"
STATIC_URL = "/static"
DOCS_ASSETS_URL = "/static/docs"


def docs_assets() -> Path:
    """Swagger UI as shipped by the fastapi-offline package: nothing from a CDN."""
    return Path(str(files("fastapi_offline") / "static"))


def install_dashboard(application: FastAPI) -> None:
    """Serve the dashboard at `/` and the API docs at `/docs`, from local files only.

    The application must be created with `docs_url=None, redoc_url=None`: FastAPI's own pages
    load their scripts from a CDN. There is no ReDoc page: its bundle fetches a logo online.
    """
    application.state.templates = make_templates()
    # The more specific mount first: Starlette matches routes in order.
    application.mount(DOCS_ASSETS_URL, StaticFiles(directory=docs_assets()), name="docs-assets")
    application.mount(STATIC_URL, StaticFiles(directory=STATIC), name="static")
    application.include_router(router)
    title = application.title
    openapi_url = application.openapi_url or "/openapi.json"

    docs = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{title} - API docs",
        swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{STATIC_URL}/favicon.svg",
        # The default validator badge would call out to an online validator.
        swagger_ui_parameters={"validatorUrl": None},
    )
    # The page starts Swagger UI with an inline script: the policy allows exactly that one.
    policy = content_security_policy(inline_script_hashes(bytes(docs.body).decode()))

    @application.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return HTMLResponse(docs.body, headers={"Content-Security-Policy": policy})
