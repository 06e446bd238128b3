from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WarehouseStock(_message.Message):
    __slots__ = ("warehouse", "available")
    WAREHOUSE_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    warehouse: str
    available: int
    def __init__(self, warehouse: _Optional[str] = ..., available: _Optional[int] = ...) -> None: ...

class Stock(_message.Message):
    __slots__ = ("product_id", "available", "warehouses")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    WAREHOUSES_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    available: int
    warehouses: _containers.RepeatedCompositeFieldContainer[WarehouseStock]
    def __init__(self, product_id: _Optional[str] = ..., available: _Optional[int] = ..., warehouses: _Optional[_Iterable[_Union[WarehouseStock, _Mapping]]] = ...) -> None: ...

class BatchGetStockRequest(_message.Message):
    __slots__ = ("product_ids",)
    PRODUCT_IDS_FIELD_NUMBER: _ClassVar[int]
    product_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, product_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class BatchGetStockResponse(_message.Message):
    __slots__ = ("stocks",)
    STOCKS_FIELD_NUMBER: _ClassVar[int]
    stocks: _containers.RepeatedCompositeFieldContainer[Stock]
    def __init__(self, stocks: _Optional[_Iterable[_Union[Stock, _Mapping]]] = ...) -> None: ...
