using System.Security.Claims;
using System.Text.Encodings.Web;
using MetaCompute.Api.Data;
using MetaCompute.Api.Infrastructure;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace MetaCompute.Api.Auth;

/// <summary>Bearer API keys: the presented key is hashed and looked up among the keys that are not revoked.</summary>
public sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    MetaComputeDbContext db,
    ApiKeyCache cache,
    FailedAuthentications failures,
    IProblemDetailsService problems)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";

    private const string ThrottledItem = "auth.throttled";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? header = Request.Headers.Authorization;
        if (string.IsNullOrEmpty(header))
        {
            return AuthenticateResult.NoResult();
        }

        var address = Context.Connection.RemoteIpAddress?.ToString() ?? "unknown";
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) || header.Length <= 7)
        {
            return Failed(address, "The Authorization header must be 'Bearer <api key>'.");
        }

        var hash = ApiKeys.Hash(header[7..].Trim());
        if (!cache.TryGet(hash, out var key))
        {
            var hashText = Convert.ToBase64String(hash);
            if (failures.IsThrottled(address))
            {
                Context.Items[ThrottledItem] = true;
                return AuthenticateResult.Fail("Too many failed authentications from this address.");
            }

            if (failures.IsKnownUnknown(hashText))
            {
                return Failed(address, "The API key is unknown or revoked.");
            }

            key = await db.ApiKeys.AsNoTracking()
                .Where(k => k.KeyHash == hash && k.RevokedAt == null)
                .Select(k => new ValidKey(k.Id, k.TenantId, k.Role, k.Prefix,
                    db.Tenants.Where(t => t.Id == k.TenantId).Select(t => (TenantKind?)t.Kind).FirstOrDefault()))
                .FirstOrDefaultAsync(Context.RequestAborted);
            if (key is null)
            {
                failures.RememberUnknown(hashText);
                return Failed(address, "The API key is unknown or revoked.");
            }

            cache.Add(hash, key);
        }

        var claims = new List<Claim>
        {
            new(CallerClaims.KeyId, key.Id.ToString()),
            new(CallerClaims.KeyPrefix, key.Prefix),
            new(ClaimTypes.Role, key.Role == ApiKeyRole.Operator ? CallerClaims.OperatorRole : CallerClaims.TenantRole),
        };
        if (key.TenantId is { } tenantId)
        {
            claims.Add(new Claim(CallerClaims.TenantId, tenantId.ToString()));
            claims.Add(new Claim(CallerClaims.TenantKind, (key.TenantKind ?? TenantKind.External).ToString()));
        }

        var principal = new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName));
        return AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName));
    }

    /// <summary>A failed authentication, counted against the address; the one over its limit is answered 429 too.</summary>
    private AuthenticateResult Failed(string address, string reason)
    {
        if (!failures.Record(address))
        {
            Context.Items[ThrottledItem] = true;
        }

        return AuthenticateResult.Fail(reason);
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        if (Context.Items.ContainsKey(ThrottledItem))
        {
            var wait = Math.Max(1, (int)Math.Ceiling(failures.RetryAfter.TotalSeconds));
            Response.Headers.RetryAfter = wait.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return WriteProblemAsync(StatusCodes.Status429TooManyRequests, Problems.RateLimitedType, "Too many failed authentications",
                $"This address sent too many unknown API keys; retry after {wait} s with a valid key.");
        }

        Response.Headers.WWWAuthenticate = "Bearer";
        return WriteProblemAsync(StatusCodes.Status401Unauthorized, Problems.UnauthenticatedType, "Authentication required",
            "Send a valid API key as 'Authorization: Bearer <api key>'.");
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        WriteProblemAsync(StatusCodes.Status403Forbidden, Problems.ForbiddenType, "Not allowed", "This API key may not use this operation.");

    private async Task WriteProblemAsync(int status, string type, string title, string detail)
    {
        Response.StatusCode = status;
        await problems.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = Context,
            ProblemDetails = new ProblemDetails { Status = status, Type = type, Title = title, Detail = detail },
        });
    }
}
