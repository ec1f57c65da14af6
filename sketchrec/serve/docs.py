"""/docs and /redoc from local files: Swagger UI and ReDoc load their JS/CSS from this server (the
`fastapi-offline` package's copies), never from a CDN, so the docs work offline. Without that
package /docs says so and points at /openapi.json."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request          # module level: FastAPI resolves the docs pages' annotations here

ASSETS = "/docs-assets"


def _docs_assets() -> Path | None:
    """Swagger UI and ReDoc files shipped by the `fastapi-offline` package (no registry package
    ships them alone in a version that reads OpenAPI 3.1), or None when it is not installed."""
    try:
        import fastapi_offline
    except ImportError:
        return None
    static = Path(fastapi_offline.__file__).parent / "static"
    return static if (static / "swagger-ui-bundle.js").exists() else None


def register(app) -> None:
    """Route /docs, /redoc (outside the schema) and the assets they load."""
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    assets = _docs_assets()
    if assets is not None:
        from fastapi.staticfiles import StaticFiles
        app.mount(ASSETS, StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request):
        root = request.scope.get("root_path", "")
        if assets is None:
            return HTMLResponse(f"<p>Swagger UI is not installed here (pip install fastapi-offline). The API schema "
                                f"is at <a href='{root}/openapi.json'>{root}/openapi.json</a>.</p>")
        return get_swagger_ui_html(openapi_url=f"{root}/openapi.json", title="sketchrec API",
                                   swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{root}{ASSETS}/favicon.png")

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request):
        root = request.scope.get("root_path", "")
        if assets is None:
            return await docs(request)
        return get_redoc_html(openapi_url=f"{root}/openapi.json", title="sketchrec API",
                              redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
                              redoc_favicon_url=f"{root}{ASSETS}/favicon.png", with_google_fonts=False)
