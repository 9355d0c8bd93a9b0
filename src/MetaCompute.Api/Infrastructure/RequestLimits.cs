using System.Text;
using MetaCompute.Api.Idempotency;
using KestrelServerOptions = Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions;

namespace MetaCompute.Api.Infrastructure;

/// <summary>
/// The sizes and shapes of request this API takes, checked before anything reads the request, and answered as problems
/// rather than by Kestrel: Kestrel's own rejections have empty bodies and no way to give them one.
/// </summary>
public static class RequestLimits
{
    /// <summary>Every request body this API accepts is small; anything larger is a mistake or an attack.</summary>
    public const long MaxBodyBytes = 64 * 1024;

    /// <summary>The longest path and query the API answers (its longest real ones are a few hundred bytes).</summary>
    public const int MaxTargetLength = 8 * 1024;

    /// <summary>
    /// Kestrel refuses request lines longer than this with an empty 414 of its own; set above <see cref="MaxTargetLength"/>
    /// so that the URLs between the two are answered by the service with a problem body.
    /// </summary>
    public const int KestrelMaxRequestLineBytes = 64 * 1024;

    /// <summary>The headers the API reads as tokens; each must be visible ASCII (RFC 9110 field values, RFC 8941 strings).</summary>
    private static readonly string[] TokenHeaders = [IdempotentRequest.HeaderName, "If-Match"];

    /// <summary>
    /// Kestrel's limits: the body's, a request line long enough for <see cref="UseRequestLimits"/> to answer, and header
    /// values decoded as Latin-1 instead of refused when they hold non-ASCII bytes, so the service can say which one.
    /// </summary>
    public static void Configure(KestrelServerOptions kestrel)
    {
        kestrel.Limits.MaxRequestBodySize = MaxBodyBytes;
        kestrel.Limits.MaxRequestLineSize = KestrelMaxRequestLineBytes;
        kestrel.RequestHeaderEncodingSelector = _ => Encoding.Latin1;
    }

    /// <summary>
    /// Refuses an oversize declared body, an overlong URL and a token header that is not visible ASCII before any handler
    /// reads them. Kestrel's body limit (the same value) still catches chunked bodies that declare no length.
    /// </summary>
    public static IApplicationBuilder UseRequestLimits(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        var request = context.Request;
        if (request.ContentLength > MaxBodyBytes)
        {
            throw new BadHttpRequestException($"The request body exceeds {MaxBodyBytes} bytes.", StatusCodes.Status413PayloadTooLarge);
        }

        if (request.Path.Value?.Length + request.QueryString.Value?.Length > MaxTargetLength)
        {
            throw new BadHttpRequestException($"The URL exceeds {MaxTargetLength} characters.", StatusCodes.Status414UriTooLong);
        }

        foreach (var header in TokenHeaders)
        {
            if (request.Headers[header].Any(value => value is not null && value.Any(c => c is < (char)0x20 or > (char)0x7E)))
            {
                throw new BadHttpRequestException($"The {header} header must be visible ASCII characters only.", StatusCodes.Status400BadRequest);
            }
        }

        await next(context);
    });
}
