namespace MetaCompute.Api.Infrastructure;

public static class RequestLimits
{
    /// <summary>Every request body this API accepts is small; anything larger is a mistake or an attack.</summary>
    public const long MaxBodyBytes = 64 * 1024;

    /// <summary>
    /// Refuses a declared oversize body before any handler reads it. Kestrel's own limit (set to the same value) still
    /// catches chunked bodies that declare no length.
    /// </summary>
    public static IApplicationBuilder UseBodySizeLimit(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        if (context.Request.ContentLength > MaxBodyBytes)
        {
            throw new BadHttpRequestException($"The request body exceeds {MaxBodyBytes} bytes.", StatusCodes.Status413PayloadTooLarge);
        }

        await next(context);
    });
}
