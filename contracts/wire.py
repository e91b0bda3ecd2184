"""How values travel through Temporal: pydantic models as JSON, without default fields.

Every workflow input, result, memo and activity payload lands in a history, and
Temporal refuses payloads over 2 MB: a 10,000-task plan's DAG with every default
spelled out is several MB, with defaults left out about a third of it. Decoding
fills the defaults back in, so payloads written before (with every field) read the same.
A model's default is therefore part of its wire format: change one and recorded
histories read differently. A plan's tasks travel packed (contracts/packed_tasks.py).
"""

from typing import Any

from pydantic_core import SchemaSerializer, core_schema
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)

from magsag.contracts import packed_tasks

_SERIALIZER = SchemaSerializer(core_schema.any_schema())
# A plan's tasks are packed in payloads (contracts/packed_tasks.py).
_CONTEXT = {packed_tasks.WIRE: True}


class _CompactJSON(PydanticJSONPlainPayloadConverter):
    def to_payload(self, value: Any) -> Payload | None:
        return Payload(
            metadata={"encoding": self.encoding.encode()},
            data=_SERIALIZER.to_json(value, exclude_defaults=True, context=_CONTEXT),
        )


class _PayloadConverter(CompositePayloadConverter):
    def __init__(self) -> None:
        super().__init__(
            *(
                _CompactJSON() if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


data_converter = DataConverter(payload_converter_class=_PayloadConverter)

# Temporal refuses a payload over 2 MB (and warns from 512 KB).
MAX_PAYLOAD_BYTES = 2 * 1024 * 1024


def size_on_the_wire(value: Any) -> int:
    """Bytes of value as a payload."""
    return len(_SERIALIZER.to_json(value, exclude_defaults=True, context=_CONTEXT))
