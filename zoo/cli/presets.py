"""`zoo presets` (list what the registry names and this machine holds) and `zoo publish` (a release archive)."""

from __future__ import annotations

import json


def cmd_presets(args) -> None:
    """List the presets the registry names or this machine holds: name, kind, size, metrics, where they are."""
    from zoo import hub

    rows = hub.listing()
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    for row in rows:
        metrics = ", ".join(f"{k} {v}" for k, v in row["metrics"].items())
        where = "+".join(row["local"]) or ("download" if row["download"] else "not published yet")
        print(f"{row['name']:<24} {row['kind'] or '?':<12} {hub.human_size(row['size']):>9}  {where:<18} {metrics}")


def cmd_publish(args) -> None:
    """Pack a preset into a release archive (OUT/NAME.tar.gz, reproducible) and print its registry entry as JSON."""
    from zoo import hub

    name, entry = hub.publish(args.model, args.out, name=args.name, url=args.url, hf=args.hf, description=args.description)
    if args.registry:
        hub.add_to_registry(args.registry, name, entry)
    print(json.dumps({name: entry}, indent=1))


def add_parsers(sub) -> None:
    s = sub.add_parser("presets", help="list the presets (registry and local): name, kind, size, metrics, where", description=cmd_presets.__doc__)
    s.add_argument("--json", action="store_true", help="print the list as JSON")
    s.set_defaults(func=cmd_presets)

    s = sub.add_parser("publish", help="pack a preset into a release archive and print its registry entry", description=cmd_publish.__doc__)
    s.add_argument("--model", required=True, help="preset name, folder or training run")
    s.add_argument("--out", required=True, help="folder to write NAME.tar.gz into")
    s.add_argument("--name", help="the preset's name (default: the folder's, or the run's for RUN/preset)")
    s.add_argument("--url", help="where the archive will be served (a URL ending in / gets NAME.tar.gz appended)")
    s.add_argument("--hf", help="hf://owner/repo[@revision] holding the same files, as a second source")
    s.add_argument("--description", help="default: the first paragraph of the preset's README.md")
    s.add_argument("--registry", help="also write the entry into this registry JSON file (e.g. zoo/registry.json)")
    s.set_defaults(func=cmd_publish)
