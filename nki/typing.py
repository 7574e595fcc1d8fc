"""``nki.typing``: shape annotations such as ``nt.tensor[128, 512]`` (documentation only)."""


class _Subscriptable:
    def __init__(self, name):
        self.name = name

    def __getitem__(self, item):
        return self

    def __repr__(self):
        return f"nki.typing.{self.name}"


tensor = _Subscriptable("tensor")
mutable_tensor = _Subscriptable("mutable_tensor")
scalar = _Subscriptable("scalar")
