"""Print the Markdown table of every setting, its environment variable and its default."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel

from kernel_memory.settings import Settings


def iter_settings(model: type[BaseModel], prefix: str = "KM_") -> Iterator[tuple[str, str, str]]:
    """Yield (environment variable, default, type) for every leaf field."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        variable = f"{prefix}{name.upper()}"
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from iter_settings(annotation, variable + "__")
            continue
        default = field.get_default(call_default_factory=True)
        shown = "(unset)" if default is None else str(default)
        yield variable, shown, str(annotation).replace("typing.", "").replace("pydantic.types.", "")


def main() -> None:
    print("| environment variable / app setting | default |")
    print("|---|---|")
    for variable, default, _ in iter_settings(Settings):
        print(f"| `{variable}` | `{default}` |")


if __name__ == "__main__":
    main()
