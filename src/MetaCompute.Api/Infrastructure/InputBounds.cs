using System.Collections;
using System.Collections.Concurrent;
using System.Reflection;
using System.Text.Json;

namespace MetaCompute.Api.Infrastructure;

/// <summary>
/// Shape rules every request obeys, whatever its own validator says: no text holds a NUL character (PostgreSQL cannot
/// store one and refuses the statement) or more than <see cref="MaxTextLength"/> characters, and every time lies in [<see cref="Earliest"/>, <see cref="Latest"/>), so
/// that date arithmetic, ranges and defaults derived from it stay inside the calendar.
/// </summary>
public static class InputBounds
{
    public static readonly DateTimeOffset Earliest = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);
    public static readonly DateTimeOffset Latest = new(2100, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public static readonly string TimeMessage = $"Give a time from {Earliest:yyyy-MM-dd} up to {Latest:yyyy-MM-dd} (UTC).";
    public const string NulMessage = "Text must not contain the NUL character (U+0000).";

    /// <summary>The longest text any field, query value or path segment may hold; fields with rules of their own hold less.</summary>
    public const int MaxTextLength = 1_000;

    public static readonly string LengthMessage = $"Text is at most {MaxTextLength} characters long.";

    private static readonly ConcurrentDictionary<Type, PropertyInfo[]> Checked = new();

    /// <summary>The fields at fault in the request's route, query string and bound arguments, by the names the client used.</summary>
    public static Dictionary<string, string[]> Check(HttpRequest request, IEnumerable<object?> arguments)
    {
        var errors = new Dictionary<string, string[]>();
        foreach (var (name, value) in request.RouteValues)
        {
            if (value is string text && TextFault(text) is { } fault)
            {
                errors[name] = [fault];
            }
        }

        foreach (var (name, values) in request.Query)
        {
            if (values.Select(v => v is null ? null : TextFault(v)).FirstOrDefault(f => f is not null) is { } fault)
            {
                errors[name.Replace("\0", "\\0", StringComparison.Ordinal)] = [fault];
            }
            else if (TextFault(name) is { } nameFault)
            {
                errors[name.Length > 40 ? name[..40] + "…" : name.Replace("\0", "\\0", StringComparison.Ordinal)] = [nameFault];
            }
        }

        foreach (var argument in arguments)
        {
            if (argument is not null && IsOurs(argument.GetType()))
            {
                Walk(argument, "", errors, depth: 0);
            }
        }

        return errors;
    }

    private static void Walk(object value, string path, Dictionary<string, string[]> errors, int depth)
    {
        if (depth > 8)
        {
            return;
        }

        foreach (var property in Checked.GetOrAdd(value.GetType(), type => type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
                     .Where(p => p.GetIndexParameters().Length == 0).ToArray()))
        {
            var name = path + JsonNamingPolicy.CamelCase.ConvertName(property.Name);
            CheckValue(property.GetValue(value), name, errors, depth);
        }
    }

    private static void CheckValue(object? value, string name, Dictionary<string, string[]> errors, int depth)
    {
        switch (value)
        {
            case null:
                return;
            case string text when TextFault(text) is { } fault:
                errors[name] = [fault];
                return;
            case DateTimeOffset time when time < Earliest || time >= Latest:
                errors[name] = [TimeMessage];
                return;
            case string:
                return;
            case IEnumerable items:
                var i = 0;
                foreach (var item in items)
                {
                    CheckValue(item, $"{name}[{i++}]", errors, depth + 1);
                }

                return;
            default:
                if (IsOurs(value.GetType()))
                {
                    Walk(value, name + ".", errors, depth + 1);
                }

                return;
        }
    }

    private static string? TextFault(string text) => text.Contains('\0') ? NulMessage : text.Length > MaxTextLength ? LengthMessage : null;

    /// <summary>
    /// Only the API's own request shapes (records: bodies and bound queries) are walked, never the services, principals or
    /// framework types a handler also takes.
    /// </summary>
    private static bool IsOurs(Type type) => type.Namespace?.StartsWith("MetaCompute.Api", StringComparison.Ordinal) == true
        && type.GetMethod("<Clone>$") is not null;
}
