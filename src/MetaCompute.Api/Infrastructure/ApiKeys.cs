using System.Security.Cryptography;
using System.Text;

namespace MetaCompute.Api.Infrastructure;

/// <summary>API keys are 32 random bytes; only their SHA-256 is stored. The prefix identifies a key in lists and logs.</summary>
public static class ApiKeys
{
    private const string Scheme = "mc_";

    public static string Generate() => Scheme + Base64Url(RandomNumberGenerator.GetBytes(32));

    public static byte[] Hash(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));

    public static string Prefix(string key) => key.Length <= 11 ? key : key[..11];

    private static string Base64Url(byte[] bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
