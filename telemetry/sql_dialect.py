"""SQLite's SQL, as the store's callers write it, made to run on PostgreSQL.

The code above the store (ingest, reports, staff pages) writes SQLite's SQL. Rather than
keeping a second copy of every query, :func:`translate` rewrites the few places where
the dialects differ, and the functions the reports use that PostgreSQL lacks are defined
in PostgreSQL itself (``migrations_pg/functions.sql``), so the same text runs on both:

- placeholders: ``?`` -> ``%s``, ``?1`` -> ``%(_n1)s`` (see :func:`numbered_args`),
  ``:name`` -> ``%(name)s``, a literal ``%`` -> ``%%``;
- ``INSERT OR IGNORE INTO ...`` -> ``INSERT INTO ... ON CONFLICT DO NOTHING``;
- ``a IS NOT b`` / ``a IS b`` (b not NULL, TRUE or FALSE) -> ``IS [NOT] DISTINCT FROM``;
- the scalar ``max(a, b)`` / ``min(a, b)`` -> ``greatest`` / ``least``;
- the column name ``user`` (a reserved word in PostgreSQL) -> ``"user"``;
- ``strftime('%s', 'now')`` -> the epoch seconds of now;
- ``CROSS JOIN t ON ...`` (SQLite's join-order hint) -> ``JOIN t ON ...``;
- a subquery in FROM without a name gets one (PostgreSQL 15 wants it);
- ``DO UPDATE SET n = n + excluded.n``: the bare ``n`` on the right -> ``t.n``.

:func:`translate_schema` turns a migration's DDL into PostgreSQL's (types, ``INTEGER
PRIMARY KEY AUTOINCREMENT`` -> identity, ``WITHOUT ROWID`` dropped, and a ``rowid``
identity column on every table without an integer key, so ``ORDER BY rowid`` and
hub/owntracks.py's watermarks keep working). Triggers are not translated: a migration
with triggers has a hand-written PostgreSQL version in ``migrations_pg/``.

String literals, quoted identifiers and comments are never rewritten.
"""

from __future__ import annotations

import re
from functools import lru_cache

_LEXEME = re.compile(r"""('(?:[^']|'')*')|("(?:[^"]|"")*")|(--[^\n]*)""")
_MASK = "\x00{}\x00"
_UNMASK = re.compile("\x00(\\d+)\x00")


def _mask(sql: str) -> tuple[str, list[str]]:
    """``sql`` with every string literal, quoted identifier and comment replaced by a
    numbered mark, and the list of what was replaced."""
    kept: list[str] = []

    def keep(m: re.Match) -> str:
        kept.append(m.group(0))
        return _MASK.format(len(kept) - 1)

    return _LEXEME.sub(keep, sql), kept


def _unmask(sql: str, kept: list[str], percent: bool) -> str:
    def put(m: re.Match) -> str:
        s = kept[int(m.group(1))]
        if s.startswith("--"):
            return ""
        return s.replace("%", "%%") if percent else s

    return _UNMASK.sub(put, sql)


_NOW = re.compile(r"strftime\(\s*'%s'\s*,\s*'now'\s*\)", re.IGNORECASE)
_IS = re.compile(r"\bIS(\s+NOT)?\s+(?!NULL\b|TRUE\b|FALSE\b|NOT\b|DISTINCT\b|UNKNOWN\b)", re.I)
_USER = re.compile(r"(?<![\w\"])user(?![\w\"(])", re.IGNORECASE)
_MINMAX = re.compile(r"\b(max|min)\s*\(", re.IGNORECASE)
_INSERT_OR_IGNORE = re.compile(r"\bINSERT\s+OR\s+IGNORE\b", re.IGNORECASE)
_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)
_CROSS_JOIN_ON = re.compile(r"\bCROSS\s+JOIN(\s+\w+(?:\s+(?:AS\s+)?(?!ON\b)\w+)?\s+ON)\b", re.I)
_NUMBERED = re.compile(r"\?(\d+)")
NUMBERED = re.compile(r"%\(_n\d+\)s")  # a translated ``?N``: the arguments become a dict
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def _scalar_minmax(sql: str) -> str:
    """``max(a, b)`` -> ``greatest(a, b)`` (the aggregate ``max(a)`` stays)."""
    out, pos = [], 0
    for m in _MINMAX.finditer(sql):
        if m.start() < pos:
            continue
        depth, i, comma = 0, m.end() - 1, False
        while i < len(sql):
            ch = sql[i]
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    break
            elif ch == "," and depth == 1:
                comma = True
            i += 1
        if comma:
            out.append(sql[pos : m.start()])
            out.append("greatest(" if m.group(1).lower() == "max" else "least(")
            pos = m.end()
    out.append(sql[pos:])
    return "".join(out)


_SUBQUERY = re.compile(r"\b(FROM|JOIN)\s*\(\s*SELECT\b", re.I)
_ALIAS = re.compile(
    r"\s*(AS\s+)?(?!(WHERE|GROUP|ORDER|LIMIT|UNION|JOIN|CROSS|INNER|LEFT|ON|HAVING|WINDOW"
    r"|EXCEPT|INTERSECT|OFFSET)\b)[A-Za-z_]\w*",
    re.I,
)


def _alias_subqueries(sql: str) -> str:
    """PostgreSQL before 16 wants a name for every subquery in FROM: ``AS _sN``."""
    out, pos, n = [], 0, 0
    for m in _SUBQUERY.finditer(sql):
        depth, i = 0, sql.index("(", m.start())
        while i < len(sql):
            depth += {"(": 1, ")": -1}.get(sql[i], 0)
            if depth == 0:
                break
            i += 1
        if not _ALIAS.match(sql, i + 1):
            out.append(sql[pos : i + 1])
            out.append(f" AS _s{n}")
            n += 1
            pos = i + 1
    out.append(sql[pos:])
    return "".join(out)


_UPSERT = re.compile(r"\bINSERT\s+INTO\s+(\w+)\b.*?\bDO\s+UPDATE\s+SET\b", re.I | re.S)
_WHERE = re.compile(r"\bWHERE\b", re.I)


def _split_top(text: str, sep: str = ",") -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "()":
            depth += 1 if ch == "(" else -1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _qualify_upsert(sql: str) -> str:
    """``ON CONFLICT ... DO UPDATE SET n = n + excluded.n``: PostgreSQL finds the bare
    ``n`` ambiguous; a column assigned there is named with its table on the right."""
    m = _UPSERT.search(sql)
    if not m:
        return sql
    table, tail = m.group(1), sql[m.end() :]
    ret = _RETURNING.search(tail)
    clause, rest = (tail[: ret.start()], tail[ret.start() :]) if ret else (tail, "")
    depth0_where = None
    depth = 0
    for i, ch in enumerate(clause):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and _WHERE.match(clause, i) and (i == 0 or not clause[i - 1].isalnum()):
            depth0_where = i
            break
    sets, where = (clause, "") if depth0_where is None else (
        clause[:depth0_where], clause[depth0_where:])  # fmt: skip
    pieces = [p.split("=", 1) for p in _split_top(sets)]
    names = {p[0].strip().strip('"') for p in pieces if len(p) == 2}
    if not names:
        return sql
    bare = re.compile(r"(?<![\w.:\"(])(" + "|".join(map(re.escape, names)) + r")(?![\w\"(])")

    def qualify(text: str) -> str:
        return bare.sub(lambda b: f"{table}.{b.group(1)}", text)

    sets = ",".join(p[0] + "=" + qualify(p[1]) if len(p) == 2 else p[0] for p in pieces)
    return sql[: m.end()] + sets + qualify(where) + rest


def _on_conflict_do_nothing(sql: str) -> str:
    if not _INSERT_OR_IGNORE.search(sql):
        return sql
    sql = _INSERT_OR_IGNORE.sub("INSERT", sql)
    body = sql.rstrip().rstrip(";").rstrip()
    m = _RETURNING.search(body)
    if m:
        return f"{body[: m.start()]}ON CONFLICT DO NOTHING {body[m.start() :]}"
    return f"{body} ON CONFLICT DO NOTHING"


def _rewrite(code: str) -> str:
    code = _on_conflict_do_nothing(code)
    code = _CROSS_JOIN_ON.sub(r"JOIN\1", code)
    code = _alias_subqueries(code)
    code = _qualify_upsert(code)
    code = _IS.sub(lambda m: "IS DISTINCT FROM " if m.group(1) else "IS NOT DISTINCT FROM ", code)
    code = _scalar_minmax(code)
    return _USER.sub('"user"', code)


@lru_cache(maxsize=4096)
def translate(sql: str, *, params: bool = True) -> str:
    """One statement (or a script, ``params=False``) of SQLite's SQL as PostgreSQL's.
    With ``params`` the placeholders become psycopg's and a literal ``%`` is doubled."""
    code, kept = _mask(_NOW.sub("extract(epoch from now())", sql))
    code = _rewrite(code)
    if params:
        code = code.replace("%", "%%")
        code = _NUMBERED.sub(r"%(_n\1)s", code).replace("?", "%s")
        code = _NAMED.sub(r"%(\1)s", code)
    return _unmask(code, kept, params)


def numbered_args(sql: str, args):
    """The arguments for a translated statement: a dict for SQLite's ``?N``."""
    if isinstance(args, list | tuple) and NUMBERED.search(sql):
        return {f"_n{i}": v for i, v in enumerate(args, 1)}
    return args


_TYPES = [
    (re.compile(r"\bINTEGER\s+PRIMARY\s+KEY\s+AUTOINCREMENT\b", re.I),
     "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b", re.I), "BIGINT"),
    (re.compile(r"\bREAL\b", re.I), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b", re.I), "BYTEA"),
    (re.compile(r"\)\s*WITHOUT\s+ROWID", re.I), ")"),
]  # fmt: skip
_CREATE_TABLE = re.compile(r"\bCREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)\s*\(", re.I)
_TRIGGER = re.compile(r"\bCREATE\s+TRIGGER\b", re.I)


def _table_bodies(code: str):
    """(start, end) of each CREATE TABLE's column list, without its parentheses."""
    for m in _CREATE_TABLE.finditer(code):
        depth, i = 1, m.end()
        while depth and i < len(code):
            depth += {"(": 1, ")": -1}.get(code[i], 0)
            i += 1
        yield m.end(), i - 1


def _type_untyped(body: str) -> str:
    """A column without a type (SQLite takes anything) gets BIGINT: the only one is
    ``meta.value``, which holds counters."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(body + ","):
        if ch in "()":
            depth += 1 if ch == "(" else -1
        elif ch == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    return ",".join(p.rstrip() + " BIGINT\n" if re.fullmatch(r"\s*\w+\s*", p) else p
                    for p in parts)  # fmt: skip


def translate_schema(script: str) -> str:
    """A migration's DDL (and plain statements) as PostgreSQL's, one script."""
    code, kept = _mask(_NOW.sub("extract(epoch from now())", script))
    if _TRIGGER.search(code):
        raise ValueError("triggers are not translated: write the PostgreSQL version")
    out, pos = [], 0
    for start, end in _table_bodies(code):
        body = code[start:end]
        if not re.search(r"\bAUTOINCREMENT\b", body, re.I):
            body = "\n    rowid BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE," + body
        body = _type_untyped(body)
        out += [code[pos:start], body]
        pos = end
    out.append(code[pos:])
    code = "".join(out)
    for pattern, repl in _TYPES:
        code = pattern.sub(repl, code)
    # per statement first: on the whole script, only the last one would get its ON CONFLICT
    statements = [s.strip() for s in code.split(";")]
    code = ";\n".join(_on_conflict_do_nothing(s) for s in statements if s) + ";\n"
    code = _rewrite(code)
    return _unmask(code, kept, percent=False)
