"""Small helpers shared by the JSON views: body parsing and authentication."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar, cast

from django.http import HttpRequest, HttpResponse, JsonResponse
from pydantic import BaseModel, ValidationError

from mathia.core.errors import AppError, InvalidInput

if TYPE_CHECKING:
    from mathia.accounts.models import User

Model = TypeVar("Model", bound=BaseModel)
MAX_JSON_BODY = 64 * 1024


def parse_body(request: HttpRequest, model: type[Model]) -> Model:
    """Validate the request's JSON body into ``model``; problems become one clear error."""
    if len(request.body) > MAX_JSON_BODY:
        raise InvalidInput("The request body is too large.", code="too_large")
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        raise InvalidInput("The request body is not valid JSON.", code="invalid_json") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"])
        raise InvalidInput(f"{field}: {first['msg']}" if field else first["msg"], field=field) from None


def api_login_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            raise AppError("Sign in first.", code="unauthenticated", http_status=401)
        return view(request, *args, **kwargs)

    return wrapper


def ok(data: dict[str, Any], status: int = 200) -> JsonResponse:
    return JsonResponse(data, status=status, json_dumps_params={"ensure_ascii": False})


def request_user(request: HttpRequest) -> User:
    """The signed-in user of a view behind a login check, typed as our User."""
    return cast("User", request.user)
