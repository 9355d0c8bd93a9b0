using System.Text;
using System.Text.Json.Nodes;

namespace MetaCompute.Api.Tests.Fuzzing;

/// <summary>One request the fuzzer sends, and what it changes about a valid one.</summary>
public sealed record FuzzRequest(string Operation, string Caller, HttpMethod Method, string Target, string? ContentType, string? Body,
    IReadOnlyDictionary<string, string> Headers, string Mutation)
{
    public bool HasIdempotencyKey => Headers.ContainsKey("Idempotency-Key");

    public HttpRequestMessage ToMessage()
    {
        var message = new HttpRequestMessage(Method, Target);
        if (Body is not null)
        {
            message.Content = new ByteArrayContent(Encoding.UTF8.GetBytes(Body));
            if (ContentType is not null)
            {
                message.Content.Headers.TryAddWithoutValidation("Content-Type", ContentType);
            }
        }

        foreach (var (name, value) in Headers)
        {
            message.Headers.TryAddWithoutValidation(name, value);
        }

        return message;
    }
}

/// <summary>
/// Walks the OpenAPI document and, for every operation, makes a plausible request and then many broken ones: wrong
/// types and edges of every range in its path, query and body, NUL, long and non-ASCII strings, missing and extra
/// fields, broken JSON, wrong content types, bad ids and bad headers. Values the operation needs to get past the
/// first check (a pool, a tenant, a reservation) come from <paramref name="known"/>.
/// </summary>
public sealed class OpenApiFuzzer(JsonNode document, IReadOnlyDictionary<string, string> known)
{
    private static readonly string Long = new('a', 5_000);

    /// <summary>Values for a path segment or a query parameter: wrong types, edges, and strings that hurt.</summary>
    public static readonly string[] TextValues =
    [
        "", "abc", "-1", "0", "1", "2147483647", "2147483648", "-2147483649", "1e400", "1.5", "NaN", "true", "null",
        "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2026-13-45T25:61:00Z", "not-a-date", "\0", "a\0b", "é", "😀", "%",
        "../../etc/passwd", "<script>", "' OR '1'='1", "00000000-0000-0000-0000-000000000000", Guid.NewGuid().ToString(), Long,
    ];

    /// <summary>Values for a JSON field, as JSON text.</summary>
    public static readonly string[] JsonValues =
    [
        "null", "\"\"", "\"abc\"", "\"\\u0000\"", "\"é😀\"", $"\"{Long}\"", "-1", "0", "2147483647", "2147483648", "-2147483649",
        "1e400", "1.5", "true", "[]", "{}", "\"0001-01-01T00:00:00Z\"", "\"9999-12-31T23:59:59Z\"", "\"2026-02-30T00:00:00Z\"",
        "[1,2,3]", "{\"a\":{\"b\":{\"c\":[]}}}",
    ];

    /// <summary>Whole bodies that are not the operation's JSON at all.</summary>
    private static readonly (string? ContentType, string Body)[] BrokenBodies =
    [
        ("application/json", ""), ("application/json", "{"), ("application/json", "[]"), ("application/json", "null"),
        ("application/json", "\"text\""), ("application/json", "12"), ("application/json", "{\"a\":}"), ("application/json", "{\"a\":1,}"),
        ("application/json", "\u00ff\u00fe"), ("application/json", "{\"" + Long + "\":1}"), ("text/plain", "{}"),
        ("application/xml", "<a/>"), (null, "{}"), ("application/json; charset=latin1", "{}"),
    ];

    public IEnumerable<(string Path, string Method, JsonNode Operation)> Operations() =>
        document["paths"]!.AsObject().SelectMany(path => path.Value!.AsObject()
            .Where(op => op.Key is "get" or "post" or "put" or "delete" or "patch")
            .Select(op => (path.Key, op.Key, op.Value!)));

    /// <summary>A valid request for the operation and its broken variants, for one caller.</summary>
    public IEnumerable<FuzzRequest> RequestsFor(string path, string method, JsonNode operation, string caller)
    {
        var name = operation["operationId"]!.GetValue<string>();
        var httpMethod = new HttpMethod(method.ToUpperInvariant());
        var parameters = (operation["parameters"]?.AsArray() ?? []).Select(p => p!).ToList();
        var pathParameters = parameters.Where(p => (string?)p["in"] == "path").Select(p => (string)p["name"]!).ToList();
        var queryParameters = parameters.Where(p => (string?)p["in"] == "query").Select(p => (string)p["name"]!).ToList();
        var bodySchema = Resolve(operation["requestBody"]?["content"]?["application/json"]?["schema"]);
        var validBody = bodySchema is null ? null : Example(bodySchema, depth: 0)?.ToJsonString();
        var validQuery = queryParameters.Where(known.ContainsKey).ToDictionary(q => q, q => known[q]);
        var pathValues = pathParameters.ToDictionary(p => p, p => known.GetValueOrDefault(p, Guid.NewGuid().ToString()));
        var mutating = httpMethod != HttpMethod.Get;

        FuzzRequest Make(string mutation, IReadOnlyDictionary<string, string>? pathOverride = null, IReadOnlyDictionary<string, string>? query = null,
            string? contentType = "application/json", string? body = null, bool useBody = true, IReadOnlyDictionary<string, string>? headers = null)
        {
            var target = path;
            foreach (var (parameter, value) in pathOverride ?? pathValues)
            {
                target = target.Replace("{" + parameter + "}", Uri.EscapeDataString(value), StringComparison.Ordinal);
            }

            var pairs = (query ?? validQuery).Select(q => $"{Uri.EscapeDataString(q.Key)}={Uri.EscapeDataString(q.Value)}").ToList();
            if (pairs.Count > 0)
            {
                target += "?" + string.Join('&', pairs);
            }

            var sentBody = useBody ? body ?? validBody : null;
            var sentHeaders = new Dictionary<string, string>(headers ?? new Dictionary<string, string>());
            if (mutating && headers is null)
            {
                sentHeaders["Idempotency-Key"] = "fuzz-" + Guid.NewGuid().ToString("N");
            }

            return new FuzzRequest(name, caller, httpMethod, target, sentBody is null ? null : contentType, sentBody, sentHeaders, mutation);
        }

        yield return Make("valid");

        foreach (var parameter in pathParameters)
        {
            // A NUL in the path never reaches the service: the server refuses the request line (KestrelRejectionTests).
            foreach (var value in TextValues.Where(v => !v.Contains('\0')))
            {
                yield return Make($"path {parameter}={Show(value)}", pathOverride: new Dictionary<string, string>(pathValues) { [parameter] = value });
            }
        }

        foreach (var parameter in queryParameters)
        {
            foreach (var value in TextValues)
            {
                yield return Make($"query {parameter}={Show(value)}", query: new Dictionary<string, string>(validQuery) { [parameter] = value });
            }
        }

        yield return Make("unknown query parameter", query: new Dictionary<string, string>(validQuery) { ["unexpected"] = "1" });

        if (bodySchema is not null && validBody is not null)
        {
            foreach (var (contentType, body) in BrokenBodies)
            {
                yield return Make($"body {Show(body)} as {contentType ?? "no content type"}", contentType: contentType, body: body);
            }

            yield return Make("no body", useBody: false);
            var valid = JsonNode.Parse(validBody)!.AsObject();
            foreach (var (field, fieldPath) in Fields(valid, ""))
            {
                foreach (var value in JsonValues)
                {
                    yield return Make($"body {fieldPath}={Show(value)}", body: WithField(valid, field, JsonNode.Parse(value)));
                }

                yield return Make($"body without {fieldPath}", body: WithField(valid, field, null, remove: true));
            }

            var extra = valid.DeepClone().AsObject();
            extra["unexpected"] = 1;
            yield return Make("body with an extra field", body: extra.ToJsonString());
        }

        if (mutating)
        {
            yield return Make("no Idempotency-Key", headers: new Dictionary<string, string>());
            foreach (var key in new[] { "", " ", new string('k', 256), new string('k', 5_000), "key with spaces", "\"quoted\"" })
            {
                yield return Make($"Idempotency-Key {Show(key)}", headers: new Dictionary<string, string> { ["Idempotency-Key"] = key });
            }
        }

        foreach (var ifMatch in new[] { "garbage", "*", "W/\"1\"", "\"1\", \"2\"", "\"99999999999\"", "\"\"" })
        {
            yield return Make($"If-Match {ifMatch}", headers: new Dictionary<string, string>
            {
                ["If-Match"] = ifMatch, ["Idempotency-Key"] = "fuzz-" + Guid.NewGuid().ToString("N"),
            });
        }
    }

    /// <summary>Every field of a body, nested ones included, with the dotted path the API's errors use.</summary>
    private static IEnumerable<(string[] Field, string Path)> Fields(JsonObject body, string prefix)
    {
        foreach (var (name, value) in body)
        {
            yield return ([.. prefix.Split('.', StringSplitOptions.RemoveEmptyEntries), name], prefix + name);
            if (value is JsonObject nested)
            {
                foreach (var inner in Fields(nested, prefix + name + "."))
                {
                    yield return inner;
                }
            }
        }
    }

    private static string WithField(JsonObject body, string[] field, JsonNode? value, bool remove = false)
    {
        var copy = body.DeepClone().AsObject();
        var parent = copy;
        foreach (var step in field[..^1])
        {
            parent = parent[step]!.AsObject();
        }

        if (remove)
        {
            parent.Remove(field[^1]);
        }
        else
        {
            parent[field[^1]] = value;
        }

        return copy.ToJsonString();
    }

    /// <summary>A plausible value for a schema: known names get known values, the rest the simplest of their type.</summary>
    private JsonNode? Example(JsonNode schema, int depth, string? name = null)
    {
        schema = Resolve(schema)!;
        if (name is not null && known.TryGetValue(name, out var value))
        {
            return schema["type"]?.ToJsonString().Contains("integer") == true && int.TryParse(value, out var number) ? number : value;
        }

        if (schema["enum"] is JsonArray values && values.Count > 0)
        {
            return values.FirstOrDefault(v => v is not null)?.DeepClone();
        }

        var types = schema["type"] switch
        {
            JsonArray many => many.Select(t => (string)t!).ToList(),
            JsonValue one => [(string)one!],
            _ => [],
        };
        if (schema["oneOf"] is JsonArray choices)
        {
            var choice = choices.Select(c => Resolve(c)!).FirstOrDefault(c => (string?)c["type"] != "null");
            return choice is null ? null : Example(choice, depth, name);
        }

        if (types.Contains("object") || schema["properties"] is not null)
        {
            if (depth > 4)
            {
                return new JsonObject();
            }

            var result = new JsonObject();
            foreach (var (property, propertySchema) in schema["properties"]?.AsObject() ?? [])
            {
                result[property] = Example(propertySchema!, depth + 1, property);
            }

            return result;
        }

        if (types.Contains("array"))
        {
            return new JsonArray();
        }

        if (types.Contains("integer") || types.Contains("number"))
        {
            return (int?)schema["minimum"]?.GetValue<double>() ?? 1;
        }

        if (types.Contains("boolean"))
        {
            return false;
        }

        return (string?)schema["format"] == "date-time" ? DateTimeOffset.UtcNow.AddDays(2).ToString("yyyy-MM-ddTHH:00:00Z") : "fuzz";
    }

    private JsonNode? Resolve(JsonNode? schema)
    {
        while (schema?["$ref"] is JsonValue reference)
        {
            var name = ((string)reference!).Split('/')[^1];
            schema = document["components"]!["schemas"]![name];
        }

        return schema;
    }

    private static string Show(string value) => value.Length > 40 ? $"<{value.Length} chars>" : value.Replace("\0", "\\0", StringComparison.Ordinal);
}
