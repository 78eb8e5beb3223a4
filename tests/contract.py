"""Compares the printed schema with the API contract: ../shared/api/schema.graphql plus each
adopted addition (../shared/api/additions/*.graphql, extend statements), adopted by keeping a
copy beside the base contract in contract/.

The server may add types, fields, optional arguments and enum values; it may not drop or
rename anything, nor change a type, nullability, argument or default, nor a directive
applied to a contract field."""

from __future__ import annotations

from pathlib import Path

from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    build_schema,
    print_ast,
)

REPO = Path(__file__).resolve().parents[1]
# The contract lives in the shared folder beside the repository; a copy of it and of every
# adopted addition is kept in the repository so a checkout anywhere (CI) can check itself.
SHARED_API = REPO.parent / "shared" / "api"
VENDORED = REPO / "contract"
BASE = "schema.graphql"


def adopted() -> list[str]:
    """The contract's files by name: the base first, then the adopted additions."""
    additions = sorted(p.name for p in VENDORED.glob("*.graphql") if p.name != BASE)
    return [BASE, *additions]


def shared_path(name: str) -> Path:
    return SHARED_API / name if name == BASE else SHARED_API / "additions" / name


def contract_sdl() -> str:
    """The base contract and every adopted addition, as one document."""
    texts = []
    for name in adopted():
        shared = shared_path(name)
        texts.append((shared if shared.exists() else VENDORED / name).read_text())
    return "\n".join(texts)


def _default(arg: GraphQLArgument | GraphQLInputField) -> str | None:
    """The default as written in SDL (both schemas are built from SDL, so nodes exist)."""
    node = arg.ast_node
    if node is None or node.default_value is None:
        return None
    return print_ast(node.default_value)


def _applied_directives(field: GraphQLField) -> list[str]:
    node = field.ast_node
    if node is None:
        return []
    return sorted(print_ast(d) for d in node.directives or [])


def _field_problems(where: str, want: GraphQLField, have: GraphQLField) -> list[str]:
    problems = []
    if str(want.type) != str(have.type):
        problems.append(f"{where}: type {have.type} != contract {want.type}")
    for arg_name, want_arg in want.args.items():
        have_arg = have.args.get(arg_name)
        if have_arg is None:
            problems.append(f"{where}({arg_name}): argument missing")
            continue
        if str(want_arg.type) != str(have_arg.type):
            problems.append(
                f"{where}({arg_name}): type {have_arg.type} != contract {want_arg.type}"
            )
        if _default(want_arg) != _default(have_arg):
            problems.append(
                f"{where}({arg_name}): default {_default(have_arg)} != contract {_default(want_arg)}"
            )
    for arg_name, have_arg in have.args.items():
        if (
            arg_name not in want.args
            and str(have_arg.type).endswith("!")
            and _default(have_arg) is None
        ):
            problems.append(f"{where}({arg_name}): added argument is required")
    want_directives = _applied_directives(want)
    have_directives = _applied_directives(have)
    for directive in want_directives:
        if directive not in have_directives:
            problems.append(f"{where}: directive {directive} missing (has {have_directives})")
    return problems


def contract_problems(printed_sdl: str) -> list[str]:
    """Every way the printed schema breaks the contract; empty when it honours it."""
    want = build_schema(contract_sdl())
    have = build_schema(printed_sdl)
    return compare(want, have)


def compare(want: GraphQLSchema, have: GraphQLSchema) -> list[str]:
    problems: list[str] = []
    for name, directive in want.directives and {d.name: d for d in want.directives}.items():
        have_directive = have.get_directive(name)
        if have_directive is None:
            problems.append(f"directive @{name} missing")
            continue
        for arg_name, arg in directive.args.items():
            have_arg = have_directive.args.get(arg_name)
            if have_arg is None or str(have_arg.type) != str(arg.type):
                problems.append(f"directive @{name}({arg_name}) differs")
        if sorted(str(loc) for loc in directive.locations) != sorted(
            str(loc) for loc in have_directive.locations
        ):
            problems.append(f"directive @{name} locations differ")
    for root in ("query", "mutation", "subscription"):
        want_root = getattr(want, f"{root}_type")
        have_root = getattr(have, f"{root}_type")
        if want_root is not None and (have_root is None or have_root.name != want_root.name):
            problems.append(f"schema {root} root differs")
    for name, want_type in want.type_map.items():
        if name.startswith("__"):
            continue
        have_type = have.type_map.get(name)
        if have_type is None:
            problems.append(f"type {name} missing")
            continue
        if type(want_type) is not type(have_type):
            problems.append(
                f"type {name} is a {type(have_type).__name__}, contract says "
                f"{type(want_type).__name__}"
            )
            continue
        if isinstance(want_type, GraphQLObjectType | GraphQLInterfaceType):
            assert isinstance(have_type, GraphQLObjectType | GraphQLInterfaceType)
            want_ifaces = {i.name for i in want_type.interfaces}
            have_ifaces = {i.name for i in have_type.interfaces}
            if not want_ifaces <= have_ifaces:
                problems.append(f"type {name} must implement {sorted(want_ifaces - have_ifaces)}")
            for field_name, field in want_type.fields.items():
                have_field = have_type.fields.get(field_name)
                if have_field is None:
                    problems.append(f"{name}.{field_name} missing")
                else:
                    problems += _field_problems(f"{name}.{field_name}", field, have_field)
        elif isinstance(want_type, GraphQLInputObjectType):
            assert isinstance(have_type, GraphQLInputObjectType)
            for field_name, input_field in want_type.fields.items():
                have_field = have_type.fields.get(field_name)
                if have_field is None:
                    problems.append(f"{name}.{field_name} missing")
                    continue
                if str(have_field.type) != str(input_field.type):
                    problems.append(
                        f"{name}.{field_name}: type {have_field.type} != contract "
                        f"{input_field.type}"
                    )
                want_default = _default(input_field)
                have_default = _default(have_field)
                if want_default != have_default:
                    problems.append(
                        f"{name}.{field_name}: default {have_default} != contract {want_default}"
                    )
            for field_name, have_field in have_type.fields.items():
                if (
                    field_name not in want_type.fields
                    and str(have_field.type).endswith("!")
                    and _default(have_field) is None
                ):
                    problems.append(f"{name}.{field_name}: added input field is required")
        elif isinstance(want_type, GraphQLEnumType):
            assert isinstance(have_type, GraphQLEnumType)
            missing = set(want_type.values) - set(have_type.values)
            if missing:
                problems.append(f"enum {name} lacks {sorted(missing)}")
        elif isinstance(want_type, GraphQLUnionType | GraphQLScalarType):
            pass
    return problems
