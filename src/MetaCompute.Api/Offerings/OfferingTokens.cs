using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using MetaCompute.Api.Data;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Offerings;

/// <summary>What an offering id stands for: exactly this window, this many GPUs, in this pool, until it expires.</summary>
public sealed record OfferingTerms(string PoolId, int GpuCount, DateTimeOffset StartAt, DateTimeOffset EndAt, bool SingleFabricIsland,
    DateTimeOffset ExpiresAt);

/// <summary>
/// Offering ids are self-contained, HMAC-signed tokens, so any replica can book an offering another replica quoted
/// without storing offers. The signing key is generated once and kept in the database, shared by every replica.
/// </summary>
public sealed class OfferingTokens(IServiceScopeFactory scopes)
{
    /// <summary>How long an offering stays bookable; long enough to decide, short enough that offers stay true.</summary>
    public static readonly TimeSpan Validity = TimeSpan.FromMinutes(5);

    private const string SecretName = "offering_signing_key";
    private byte[]? _key;

    public async Task<string> IssueAsync(OfferingTerms terms, CancellationToken ct)
    {
        var payload = JsonSerializer.SerializeToUtf8Bytes(terms);
        var signature = HMACSHA256.HashData(await KeyAsync(ct), payload);
        return "of_" + Base64Url.EncodeToString(payload) + "." + Base64Url.EncodeToString(signature);
    }

    public async Task<OfferingTerms?> ReadAsync(string token, CancellationToken ct)
    {
        var key = await KeyAsync(ct);
        try
        {
            var parts = token.StartsWith("of_", StringComparison.Ordinal) ? token[3..].Split('.') : [];
            if (parts.Length != 2)
            {
                return null;
            }

            var payload = Base64Url.DecodeFromChars(parts[0]);
            var signature = Base64Url.DecodeFromChars(parts[1]);
            return CryptographicOperations.FixedTimeEquals(signature, HMACSHA256.HashData(key, payload))
                ? JsonSerializer.Deserialize<OfferingTerms>(payload)
                : null;
        }
        catch (Exception e) when (e is FormatException or JsonException)
        {
            return null;
        }
    }

    private async Task<byte[]> KeyAsync(CancellationToken ct)
    {
        if (_key is not null)
        {
            return _key;
        }

        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<MetaComputeDbContext>();
        // First replica to ask creates it; everyone reads the same row.
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO service_secrets (name, value) VALUES ({SecretName}, {RandomNumberGenerator.GetBytes(32)}) ON CONFLICT (name) DO NOTHING
            """, ct);
        _key = await db.ServiceSecrets.Where(s => s.Name == SecretName).Select(s => s.Value).SingleAsync(ct);
        return _key;
    }
}
