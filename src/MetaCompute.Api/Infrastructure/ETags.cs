using System.Globalization;

namespace MetaCompute.Api.Infrastructure;

/// <summary>ETags are the row's PostgreSQL <c>xmin</c>, quoted as a strong validator.</summary>
public static class ETags
{
    public static string Format(uint version) => $"\"{version.ToString(CultureInfo.InvariantCulture)}\"";


    /// <summary>Reads a single strong ETag as sent in If-Match; anything else (a list, a weak tag, *) is not one of ours.</summary>
    public static bool TryParse(string? header, out uint version)
    {
        version = 0;
        return header is { Length: > 2 } && header[0] == '"' && header[^1] == '"' &&
               uint.TryParse(header.AsSpan(1, header.Length - 2), NumberStyles.None, CultureInfo.InvariantCulture, out version);
    }
}
