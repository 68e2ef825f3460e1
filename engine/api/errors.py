"""Binance's error codes, messages and HTTP statuses for the API's own checks (the core's
rejections carry their own code and message)."""
from __future__ import annotations


class ApiError(Exception):
    """Answered as HTTP `status` with {"code": code, "msg": msg}; the request changed nothing."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


def status_for(code: int) -> int:
    """Binance's HTTP status for a code: 401 for a key it does not accept, 429 past a rate
    limit, 400 otherwise."""
    if code in (-2014, -2015):
        return 401
    if code in (-1003, -1015):
        return 429
    return 400


def error(code: int, msg: str) -> ApiError:
    return ApiError(code, msg, status_for(code))


def unknown_error() -> ApiError:
    return ApiError(-1000, "An unknown error occured while processing the request.", 500)


def too_many_parameters(expected: int, received: int) -> ApiError:
    return error(-1101, f"Too many parameters; expected '{expected}' and received "
                        f"'{received}'.")


def duplicate_parameter() -> ApiError:
    return error(-1101, "Duplicate values for a parameter detected.")


def mandatory(name: str) -> ApiError:
    return error(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or "
                        "malformed.")


def either(a: str, b: str) -> ApiError:
    return error(-1102, f"Param '{a}' or '{b}' must be sent, but both were empty/null!")


def illegal(name: str, legal: str) -> ApiError:
    return error(-1100, f"Illegal characters found in parameter '{name}'; legal range is "
                        f"'{legal}'.")


def not_required(name: str) -> ApiError:
    return error(-1106, f"Parameter '{name}' sent when not required.")


def invalid_value(name: str) -> ApiError:
    return error(-1130, f"Data sent for parameter '{name}' is not valid.")


def invalid_symbol() -> ApiError:
    return error(-1121, "Invalid symbol.")


def bad_key_format() -> ApiError:
    return error(-2014, "API-key format invalid.")


def rejected_key() -> ApiError:
    return error(-2015, "Invalid API-key, IP, or permissions for action.")


def bad_signature() -> ApiError:
    return error(-1022, "Signature for this request is not valid.")


def outside_window() -> ApiError:
    return error(-1021, "Timestamp for this request is outside of the recvWindow.")


def ahead_of_server() -> ApiError:
    return error(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")


def unknown_order() -> ApiError:
    return error(-2011, "Unknown order sent.")


def no_such_order() -> ApiError:
    return error(-2013, "Order does not exist.")


def invalid_listen_key() -> ApiError:
    return error(-1125, "This listenKey does not exist. Please use `POST /fapi/v1/listenKey` "
                        "to recreate `listenKey`")


def algo_unsupported() -> ApiError:
    """A conditional type sent to /fapi/v1/order (or /batchOrders): Binance's answer since its
    Algo service took them (2025-12-09); they go to /fapi/v1/algoOrder."""
    return error(-4120, "Order type not supported for this endpoint. Please use the Algo Order "
                        "API endpoints instead.")
