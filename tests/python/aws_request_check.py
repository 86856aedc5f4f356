"""Check captured AWS requests against botocore's published service models.

Emulators (moto, LocalStack) and the SDK's replay client accept requests
that AWS refuses: a name over its length limit, a value outside an enum, a
name that does not match the service's pattern. This reads the requests
the provisioner really sent (as `infra::oplog` captured them, after
serialisation), parses each back into the operation's input members by
the service's wire protocol, and checks every member against the model's
rules: required members, unknown members, string and list lengths,
patterns, enums and numeric ranges.

Usage: aws_request_check.py REQUESTS.json
REQUESTS.json: a list of {service, operation, method, uri, headers, body}
(`body` is text, or null with `body_len` when it was not kept).
Prints one line per violation (operation, member path, rule) and exits 1
when there is any.
"""

import json
import sys
import urllib.parse
import xml.etree.ElementTree as ET

import botocore.loaders
import botocore.model
import regex

# The SDK's service ids (Metadata::service), lowercased without spaces, to
# botocore's service names.
SERVICES = {
    "s3": "s3",
    "iam": "iam",
    "sts": "sts",
    "ec2": "ec2",
    "kafka": "kafka",
    "kafkaconnect": "kafkaconnect",
    "mwaa": "mwaa",
    "apigateway": "apigateway",
    "kinesis": "kinesis",
    "resourcegroupstaggingapi": "resourcegroupstaggingapi",
    "secretsmanager": "secretsmanager",
}

LOADER = botocore.loaders.Loader()
_models = {}


def service_model(sdk_service):
    name = SERVICES.get(sdk_service.lower().replace(" ", ""))
    if name is None:
        raise LookupError(f"no botocore model is mapped for the SDK service {sdk_service!r}")
    if name not in _models:
        _models[name] = botocore.model.ServiceModel(LOADER.load_service_model(name, "service-2"), service_name=name)
    return _models[name]


class Violation(Exception):
    pass


# ---------------------------------------------------------------- parsing


def scalar_from_text(shape, text):
    """A URI label, query or header value as the member's type."""
    t = shape.type_name
    if t in ("integer", "long"):
        return int(text)
    if t in ("float", "double"):
        return float(text)
    if t == "boolean":
        return text.lower() == "true"
    if t == "list":
        return [scalar_from_text(shape.member, v.strip()) for v in text.split(",")]
    return text


def host_bucket(uri):
    """The bucket of a virtual-hosted S3 address (`b.s3.region.amazonaws.com`)."""
    host = urllib.parse.urlsplit(uri).hostname or ""
    if ".s3." in host or ".s3-" in host:
        return host.split(".s3")[0]
    return None


def rest_labels(op, uri, service):
    """Members bound to the URI path, and the request's query pairs."""
    template = op.http["requestUri"]
    path_template, _, fixed_query = template.partition("?")
    split = urllib.parse.urlsplit(uri)
    path = split.path
    bucket = host_bucket(uri) if service == "s3" else None
    if bucket and path_template.startswith("/{Bucket}"):
        path = "/" + bucket + ("" if path == "/" else path)
    pattern = ""
    for part in regex.split(r"(\{[^}]+\})", path_template):
        if part.startswith("{"):
            name = part[1:-1]
            greedy = name.endswith("+")
            name = name.rstrip("+")
            pattern += f"(?P<{name}>.+)" if greedy else f"(?P<{name}>[^/]+)"
        else:
            pattern += regex.escape(part)
    m = regex.fullmatch(pattern + "/?", path)
    if m is None:
        raise Violation(f"path {path!r} does not match the operation's URI {template!r}")
    labels = {k: urllib.parse.unquote(v) for k, v in m.groupdict().items()}
    query = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
    fixed = {k for k, _ in urllib.parse.parse_qsl(fixed_query, keep_blank_values=True)}
    return labels, [(k, v) for k, v in query if k not in fixed]


def xml_value(shape, elem):
    t = shape.type_name
    if t == "structure":
        out = {}
        for name, ms in shape.members.items():
            key = ms.serialization.get("name", name)
            if ms.type_name == "list" and ms.serialization.get("flattened"):
                found = [c for c in elem if local(c.tag) == key]
                if found:
                    out[name] = [xml_value(ms.member, c) for c in found]
                continue
            child = next((c for c in elem if local(c.tag) == key), None)
            if child is not None:
                out[name] = xml_value(ms, child)
        known = {ms.serialization.get("name", n) for n, ms in shape.members.items()}
        for c in elem:
            if local(c.tag) not in known:
                out[local(c.tag)] = "<unknown element>"
        return out
    if t == "list":
        member_key = shape.member.serialization.get("name", "member")
        return [xml_value(shape.member, c) for c in elem if local(c.tag) == member_key]
    return scalar_from_text(shape, elem.text or "")


def local(tag):
    return tag.rsplit("}", 1)[-1]


def json_members(shape, value):
    """A rest-json body value with its wire names (`locationName`) read
    back as member names, at every depth."""
    if shape.type_name == "structure" and isinstance(value, dict):
        by_wire = {ms.serialization.get("name", n): n for n, ms in shape.members.items()}
        return {by_wire.get(k, k): (json_members(shape.members[by_wire[k]], v) if k in by_wire else v) for k, v in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [json_members(shape.member, v) for v in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {k: json_members(shape.value, v) for k, v in value.items()}
    return value


def parse_rest(op, req, service, protocol):
    shape = op.input_shape
    if shape is None:
        return None
    labels, query = rest_labels(op, req["uri"], service)
    headers = {k.lower(): v for k, v in req["headers"].items()}
    params = {}
    body_members = {}
    query_seen = set()
    for name, ms in shape.members.items():
        loc = ms.serialization.get("location")
        wire = ms.serialization.get("name", name)
        if loc == "uri":
            if wire in labels:
                params[name] = scalar_from_text(ms, labels[wire])
        elif loc == "querystring":
            if ms.type_name == "map":
                rest = {k: v for k, v in query if k not in query_seen}
                if rest:
                    params[name] = rest
                continue
            values = [v for k, v in query if k == wire]
            query_seen.add(wire)
            if values:
                params[name] = [scalar_from_text(ms.member, v) for v in values] if ms.type_name == "list" else scalar_from_text(ms, values[0])
        elif loc == "header":
            if wire.lower() in headers:
                params[name] = scalar_from_text(ms, headers[wire.lower()])
        elif loc == "headers":
            prefix = wire.lower()
            found = {k[len(prefix):]: v for k, v in headers.items() if k.startswith(prefix)}
            if found:
                params[name] = found
        else:
            body_members[name] = ms
    # A map member takes every query parameter no other member names;
    # without one, such a parameter is unknown. `x-id` names the operation
    # for S3's routing; the SDKs add it.
    if not any(ms.serialization.get("location") == "querystring" and ms.type_name == "map" for ms in shape.members.values()):
        for k, _ in query:
            if k not in query_seen and k != "x-id":
                params[k] = "<unknown query parameter>"
    payload = shape.serialization.get("payload")
    body = req.get("body")
    if payload:
        ps = shape.members[payload]
        if ps.type_name in ("blob", "string"):
            if body is not None or req.get("body_len"):
                params[payload] = body or ""
        elif body:
            params[payload] = json.loads(body) if protocol == "rest-json" else xml_value(ps, ET.fromstring(body))
        return params
    if body:
        if protocol == "rest-json":
            doc = json.loads(body)
            by_wire = {ms.serialization.get("name", n): n for n, ms in body_members.items()}
            for k, v in doc.items():
                name = by_wire.get(k, k)
                params[name] = json_members(body_members[name], v) if name in body_members else v
        else:
            root = ET.fromstring(body)
            params.update(xml_value(shape, root))
    return params


def query_value(shape, flat, full, used, ec2):
    t = shape.type_name
    if t == "structure":
        if not any(k.startswith(full + ".") for k in flat):
            return None
        return query_struct(shape, flat, full + ".", used, ec2)
    if t == "list":
        if full in flat and flat[full] == "":
            used.add(full)
            return []
        flattened = ec2 or shape.serialization.get("flattened")
        base = full if flattened else full + "." + shape.member.serialization.get("name", "member")
        out = []
        i = 1
        while any(k == f"{base}.{i}" or k.startswith(f"{base}.{i}.") for k in flat):
            out.append(query_value(shape.member, flat, f"{base}.{i}", used, ec2))
            i += 1
        return out or None
    if t == "map":
        base = full if shape.serialization.get("flattened") else full + ".entry"
        out = {}
        i = 1
        while f"{base}.{i}.key" in flat:
            used.add(f"{base}.{i}.key")
            out[flat[f"{base}.{i}.key"]] = query_value(shape.value, flat, f"{base}.{i}.value", used, ec2)
            i += 1
        return out or None
    if full in flat:
        used.add(full)
        return scalar_from_text(shape, flat[full])
    return None


def query_struct(shape, flat, prefix, used, ec2):
    out = {}
    for name, ms in shape.members.items():
        if ec2:
            wire = ms.serialization.get("queryName") or ms.serialization.get("name", name)
            wire = wire[0].upper() + wire[1:]
        else:
            wire = ms.serialization.get("name", name)
        v = query_value(ms, flat, prefix + wire, used, ec2)
        if v is not None:
            out[name] = v
    return out


def parse_query(op, req, ec2):
    flat = dict(urllib.parse.parse_qsl(req.get("body") or "", keep_blank_values=True))
    if flat.get("Action") != op.name:
        raise Violation(f"Action {flat.get('Action')!r} is not the operation")
    used = {"Action", "Version"}
    params = query_struct(op.input_shape, flat, "", used, ec2) if op.input_shape else {}
    for k in flat:
        if k not in used:
            params.setdefault("<wire>", []).append(k)
    return params


def parse_request(req):
    sm = service_model(req["service"])
    op = sm.operation_model(req["operation"])
    protocol = sm.metadata["protocol"]
    content_type = {k.lower(): v for k, v in req["headers"].items()}.get("content-type", "")
    if "cbor" in content_type:
        raise Violation(f"CBOR bodies are not read by this check ({content_type})")
    if "x-amz-json" in content_type or protocol == "json":
        return op, json.loads(req["body"] or "{}")
    if protocol == "query":
        return op, parse_query(op, req, ec2=False)
    if protocol == "ec2":
        return op, parse_query(op, req, ec2=True)
    if protocol in ("rest-json", "rest-xml"):
        return op, parse_rest(op, req, sm.service_name, protocol)
    raise Violation(f"protocol {protocol} is not read by this check")


# ---------------------------------------------------------------- validation


def check(shape, value, path, out):
    if value is None:
        return
    t = shape.type_name
    meta = shape.metadata
    if t == "structure":
        if not isinstance(value, dict):
            out.append(f"{path}: expected a structure, got {value!r}")
            return
        for r in shape.required_members:
            if r not in value:
                out.append(f"{path}.{r}: required member missing")
        for k, v in value.items():
            if k == "<wire>":
                out.append(f"{path}: parameters the model does not define: {', '.join(v)}")
            elif k not in shape.members:
                out.append(f"{path}.{k}: not a member of {shape.name}")
            else:
                check(shape.members[k], v, f"{path}.{k}", out)
        return
    if t == "list":
        length(meta, len(value), path, "items", out)
        for i, v in enumerate(value):
            check(shape.member, v, f"{path}[{i}]", out)
        return
    if t == "map":
        length(meta, len(value), path, "entries", out)
        for k, v in value.items():
            check(shape.key, k, f"{path}<key {k!r}>", out)
            check(shape.value, v, f"{path}[{k!r}]", out)
        return
    if t == "string":
        if not isinstance(value, str):
            out.append(f"{path}: expected a string, got {value!r}")
            return
        length(meta, len(value), path, "characters", out)
        if shape.enum and value not in shape.enum:
            out.append(f"{path} = {value!r}: not one of {', '.join(shape.enum)}")
        pattern = meta.get("pattern")
        if pattern is not None and not matches(pattern, value):
            out.append(f"{path} = {value!r}: does not match the pattern {pattern}")
        return
    if t in ("integer", "long", "float", "double"):
        if "min" in meta and value < meta["min"]:
            out.append(f"{path} = {value}: below the minimum {meta['min']}")
        if "max" in meta and value > meta["max"]:
            out.append(f"{path} = {value}: above the maximum {meta['max']}")
        return
    if t == "blob" and isinstance(value, str):
        length(meta, len(value), path, "bytes", out)


def matches(pattern, value):
    """A model pattern as the services apply it. Smithy leaves patterns
    unanchored, but many models drop the anchors of a rule the service
    applies to the whole value (MWAA's `[a-zA-Z][0-9a-zA-Z-_]*` refuses a
    name that starts with a digit): a pattern with neither `^` nor `$`
    must match the whole value; an anchored one is searched as written."""
    if not pattern.startswith("^") and not pattern.endswith("$"):
        return regex.fullmatch(pattern, value) is not None
    return regex.search(pattern, value) is not None


def length(meta, n, path, unit, out):
    if "min" in meta and n < meta["min"]:
        out.append(f"{path}: {n} {unit}, fewer than the minimum {meta['min']}")
    if "max" in meta and n > meta["max"]:
        out.append(f"{path}: {n} {unit}, more than the maximum {meta['max']}")


def violations(requests):
    out = []
    for req in requests:
        label = f"{req['service']}:{req['operation']}"
        found = []
        try:
            op, params = parse_request(req)
            if op.input_shape is not None:
                check(op.input_shape, params, label, found)
        except Violation as e:
            found.append(f"{label}: {e}")
        except (LookupError, ValueError, ET.ParseError) as e:
            found.append(f"{label}: cannot read the request ({type(e).__name__}: {e})")
        out.extend(f for f in found if f not in out)
    return out


def main():
    requests = json.load(open(sys.argv[1]))
    found = violations(requests)
    services = sorted({r["service"] for r in requests})
    print(f"checked {len(requests)} requests ({', '.join(services)}) against botocore's service models")
    for v in found:
        print(v)
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
