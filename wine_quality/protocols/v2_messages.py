"""The JSON objects of the Open Inference Protocol (V2) over REST, as this service reads and writes them."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

# A parameter's value is a string, a number or a boolean; never coerced from one to another.
Parameters = dict[str, StrictStr | StrictInt | StrictFloat | StrictBool]
# Numbers in row-major order, flat or nested as the shape (ints accepted, booleans refused); strings for BYTES (the
# wines' types).
TensorData = Annotated[
    list[StrictFloat] | list[list[StrictFloat]] | list[StrictStr] | list[list[StrictStr]],
    Field(union_mode="left_to_right", description="the values in row-major order, flat or nested by the shape"),
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RequestInput(_Request):
    """One input tensor: the whole batch's shape and values."""

    name: str
    shape: list[Annotated[int, Field(ge=0)]]
    datatype: str
    parameters: Parameters | None = None
    data: TensorData | None = Field(None, description="absent only when the values follow as binary data")


class RequestOutput(_Request):
    """An output the client asks for, by name."""

    name: str
    parameters: Parameters | None = None


class InferenceRequest(_Request):
    """An inference request: either one `wines` tensor [N, 11], or one [N] input per feature (content type `pd`)."""

    id: str | None = None
    parameters: Parameters | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = Field(None, description="the outputs wanted; all of them when absent")


class ResponseOutput(BaseModel):
    """One output tensor of the whole batch."""

    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: list[float] | list[bool] | list[str] | None = Field(None, description="absent when sent as binary data")


class InferenceResponse(BaseModel):
    """The answer to an inference request."""

    model_name: str
    model_version: str
    id: str | None = Field(None, description="the request's id, when it had one")
    parameters: Parameters | None = None
    outputs: list[ResponseOutput]


class MetadataTensor(BaseModel):
    """An input or output as the model metadata describes it (-1: any size)."""

    name: str
    datatype: str
    shape: list[int]
    parameters: Parameters | None = None


class ModelMetadata(BaseModel):
    """A served model: its name, its one version, what runs it, what it takes and what it answers."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]
    parameters: Parameters | None = None


class ServerMetadata(BaseModel):
    """The server's name, version and the protocol extensions it supports."""

    name: str
    version: str
    extensions: list[str]


class Live(BaseModel):
    live: bool


class Ready(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class V2Error(BaseModel):
    """The protocol's error shape."""

    error: str
