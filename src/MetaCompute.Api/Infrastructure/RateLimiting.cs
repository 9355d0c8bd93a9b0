using System.Globalization;
using System.Threading.RateLimiting;
using MetaCompute.Api.Auth;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.RateLimiting;

namespace MetaCompute.Api.Infrastructure;

public sealed class RateLimitOptions
{
    /// <summary>Sustained requests per second per API key.</summary>
    public int PermitsPerSecond { get; set; } = 50;

    /// <summary>Requests a key may burst above the sustained rate.</summary>
    public int Burst { get; set; } = 100;
}

public static class RateLimiting
{
    public const string PerApiKey = "per-api-key";

    /// <summary>
    /// A token bucket per API key (per client address for calls without a valid key). Rejections answer 429 with
    /// Retry-After and a problem body; ASP.NET's limiter would answer a bare 503 otherwise.
    /// </summary>
    public static IServiceCollection AddPerApiKeyRateLimiting(this IServiceCollection services, IConfiguration configuration)
    {
        var limits = configuration.GetSection("RateLimiting").Get<RateLimitOptions>() ?? new RateLimitOptions();
        return services.AddRateLimiter(options =>
        {
            options.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            options.AddPolicy(PerApiKey, context =>
            {
                var partition = context.User.KeyIdOf() ?? "ip:" + context.Connection.RemoteIpAddress;
                return RateLimitPartition.GetTokenBucketLimiter(partition, _ => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = limits.Burst,
                    TokensPerPeriod = limits.PermitsPerSecond,
                    ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                    QueueLimit = 0,
                    AutoReplenishment = true,
                });
            });
            options.OnRejected = async (context, ct) =>
            {
                var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait)
                    ? Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds))
                    : 1;
                context.HttpContext.Response.Headers.RetryAfter = retryAfter.ToString(CultureInfo.InvariantCulture);
                var problems = context.HttpContext.RequestServices.GetRequiredService<IProblemDetailsService>();
                await problems.WriteAsync(new ProblemDetailsContext
                {
                    HttpContext = context.HttpContext,
                    ProblemDetails = new ProblemDetails
                    {
                        Status = StatusCodes.Status429TooManyRequests,
                        Type = Problems.RateLimitedType,
                        Title = "Too many requests",
                        Detail = $"This API key is over its rate limit; retry after {retryAfter} s.",
                    },
                });
            };
        });
    }
}
