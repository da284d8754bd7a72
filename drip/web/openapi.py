"""The OpenAPI 3.1 document served at /api/v1/openapi.json (tests check it against the
routes and the answers)."""

from __future__ import annotations

from typing import Any

_PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _problems(*statuses: int) -> dict[str, Any]:
    words = {400: "Bad input", 401: "Missing, unknown or revoked key", 403: "The key lacks "
             "this scope", 404: "No such subscriber", 409: "Suppressed or unsubscribed",
             413: "Body too large"}
    return {str(s): {"description": words[s], "content": {
        "application/problem+json": {"schema": _PROBLEM}}} for s in statuses}


_EMAIL = {"name": "email", "in": "path", "required": True, "schema": {"type": "string"}}
_STAMP = {"type": ["string", "null"], "format": "date-time"}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "drip API", "version": "1",
             "description": "Enroll, look up and unsubscribe people, and record purchases. "
                            "Send Authorization: Bearer KEY (drip api-key create)."},
    "servers": [{"url": "/api/v1"}],
    "security": [{"bearer": []}],
    "paths": {
        "/enrollments": {"post": {
            "summary": "Enroll someone in a sequence (scope: enroll)",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["email", "sequence", "timezone", "consent"],
                "properties": {"email": {"type": "string"}, "sequence": {"type": "string"},
                               "name": {"type": "string"},
                               "timezone": {"type": "string", "description":
                                            "IANA name such as Europe/London, or UTC"},
                               "consent": {"const": True},
                               "tags": {"type": "array", "items": {"type": "string"}}}}}}},
            "responses": {
                "201": _answer("Enrolled", {"$ref": "#/components/schemas/Enrollment"}),
                "200": _answer("Already enrolled", {"$ref": "#/components/schemas/Enrollment"}),
                **_problems(400, 401, 403, 409, 413)}}},
        "/subscribers/{email}": {
            "parameters": [_EMAIL],
            "get": {"summary": "One person's journey (scope: read)", "responses": {
                "200": _answer("The journey", {"$ref": "#/components/schemas/Journey"}),
                **_problems(401, 403, 404)}},
            "delete": {"summary": "Unsubscribe from everything (scope: unsubscribe)",
                       "responses": {"200": _answer("Unsubscribed", {
                           "type": "object", "required": ["unsubscribed", "changed"],
                           "properties": {"unsubscribed": {"const": True},
                                          "changed": {"type": "boolean"}}}),
                           **_problems(401, 403, 404)}}},
        "/events/purchase": {"post": {
            "summary": "Record an order and enroll the buyer (scope: enroll)",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["order_id", "email", "product"],
                "properties": {k: {"type": "string"} for k in (
                    "order_id", "email", "product", "name", "timezone")}}}}},
            "responses": {
                "201": _answer("Recorded", {"$ref": "#/components/schemas/Purchase"}),
                "200": _answer("Seen before", {"$ref": "#/components/schemas/Purchase"}),
                **_problems(400, 401, 403, 413)}}},
        "/openapi.json": {"get": {"summary": "This document", "security": [],
                                  "responses": {"200": {"description": "OpenAPI 3.1"}}}},
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Problem": {"type": "object", "required": ["type", "title", "status", "detail"],
                        "properties": {"type": {"type": "string"},
                                       "title": {"type": "string"},
                                       "status": {"type": "integer"},
                                       "detail": {"type": "string"}}},
            "Enrollment": {"type": "object", "required": [
                "created", "subscriber_id", "enrollment_id", "state"], "properties": {
                "created": {"type": "boolean"}, "subscriber_id": {"type": "integer"},
                "enrollment_id": {"type": "integer"}, "state": {"type": "string"}}},
            "Purchase": {"type": "object", "required": ["recorded", "enrolled_in", "note"],
                         "properties": {"recorded": {"type": "boolean"},
                                        "enrolled_in": {"type": ["string", "null"]},
                                        "note": {"type": "string"}}},
            "Journey": {"type": "object", "required": [
                "email", "name", "timezone", "state", "joined_at", "enrollments",
                "deliveries", "purchases"], "properties": {
                "email": {"type": "string"}, "name": {"type": "string"},
                "timezone": {"type": "string"}, "state": {"type": "string"},
                "joined_at": {"type": "string", "format": "date-time"},
                "enrollments": {"type": "array", "items": {"type": "object", "required": [
                    "sequence", "state", "enrolled_at"], "properties": {
                    "sequence": {"type": "string"}, "state": {"type": "string"},
                    "enrolled_at": _STAMP}}},
                "deliveries": {"type": "array", "items": {"type": "object", "required": [
                    "step", "variant", "state", "due_at", "sent_at"], "properties": {
                    "step": {"type": "string"}, "variant": {"type": "string"},
                    "state": {"type": "string"}, "due_at": _STAMP, "sent_at": _STAMP}}},
                "purchases": {"type": "array", "items": {"type": "object"}}}},
        },
    },
}
