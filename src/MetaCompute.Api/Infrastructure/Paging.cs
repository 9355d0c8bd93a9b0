using System.Buffers.Text;
using System.Text;

namespace MetaCompute.Api.Infrastructure;

/// <summary>Keyset paging: the page token is the opaque, URL-safe encoding of the last key the client saw.</summary>
public static class Paging
{
    public const int DefaultLimit = 50;
    public const int MaxLimit = 500;

    public static string Encode(string lastKey) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes("v1:" + lastKey));

    public static bool TryDecode(string? token, out string? lastKey)
    {
        lastKey = null;
        if (string.IsNullOrEmpty(token))
        {
            return true;
        }

        try
        {
            var text = Encoding.UTF8.GetString(Base64Url.DecodeFromChars(token));
            if (!text.StartsWith("v1:", StringComparison.Ordinal))
            {
                return false;
            }

            lastKey = text[3..];
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    public static int Limit(int? requested) => requested ?? DefaultLimit;

    /// <summary>Builds a page from <paramref name="limit"/> + 1 rows: the extra row only says whether there is more.</summary>
    public static Page<TResponse> ToPage<T, TResponse>(List<T> rows, int limit, Func<T, string> key, Func<T, TResponse> map)
    {
        var hasMore = rows.Count > limit;
        var items = rows.Take(limit).Select(map).ToList();
        return new Page<TResponse>(items, hasMore ? Encode(key(rows[limit - 1])) : null);
    }
}

public sealed record Page<T>(IReadOnlyList<T> Items, string? NextPageToken);
