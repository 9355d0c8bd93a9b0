using System.Net.Sockets;
using System.Text;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Tests.Infrastructure;

namespace MetaCompute.Api.Tests;

/// <summary>The service on real Kestrel, for what the in-memory test server never sees: raw bytes on the wire.</summary>
public sealed class KestrelApiFactory : ApiFactory
{
    public KestrelApiFactory() => UseKestrel(0);
}

/// <summary>
/// Requests Kestrel parses before the service sees them. Those the service can answer get problem+json; those only
/// Kestrel answers (docs/ERRORS.md lists them) are pinned here as they are, so a change in either shows.
/// </summary>
public sealed class KestrelRejectionTests(KestrelApiFactory api) : IClassFixture<KestrelApiFactory>
{
    [Theory]
    [InlineData("Idempotency-Key", "caf\u00e9-1")]
    [InlineData("Idempotency-Key", "tab\there")]
    [InlineData("If-Match", "\"\u00ff\"")]
    public async Task A_token_header_with_bytes_outside_visible_ascii_is_a_400_problem_naming_the_header(string header, string value)
    {
        var (status, contentType, body) = await SendRawAsync("POST", "/v1/reservations", (header, value));
        Assert.Equal(400, status);
        Assert.Equal("application/problem+json", contentType);
        Assert.Contains(Problems.MalformedRequestType, body);
        Assert.Contains(header, body);
    }

    [Fact]
    public async Task A_url_over_8_kb_is_a_414_problem()
    {
        var (status, contentType, body) = await SendRawAsync("GET", "/v1/pools?x=" + new string('a', RequestLimits.MaxTargetLength));
        Assert.Equal(414, status);
        Assert.Equal("application/problem+json", contentType);
        Assert.Contains(Problems.UriTooLongType, body);
    }

    [Fact]
    public async Task What_only_kestrel_answers_is_a_bare_4xx_never_a_5xx()
    {
        // A NUL in the path and a request line over Kestrel's limit never reach the service (docs/ERRORS.md).
        var (nulStatus, _, _) = await SendRawAsync("GET", "/v1/pools/%00");
        Assert.Equal(400, nulStatus);
        var (longStatus, _, _) = await SendRawAsync("GET", "/v1/pools?x=" + new string('a', RequestLimits.KestrelMaxRequestLineBytes));
        Assert.Equal(414, longStatus);
    }

    /// <summary>One HTTP/1.1 request written byte for byte (header values as Latin-1), and its status, content type and body.</summary>
    private async Task<(int Status, string? ContentType, string Body)> SendRawAsync(string method, string target, params (string Name, string Value)[] headers)
    {
        api.StartServer();
        using var client = api.CreateClient();
        var baseAddress = client.BaseAddress!;
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(baseAddress.Host, baseAddress.Port);
        await using var stream = tcp.GetStream();
        var request = new StringBuilder($"{method} {target} HTTP/1.1\r\nHost: {baseAddress.Authority}\r\nAuthorization: Bearer {ApiFactory.OperatorKey}\r\n");
        foreach (var (name, value) in headers)
        {
            request.Append($"{name}: {value}\r\n");
        }

        request.Append("Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
        await stream.WriteAsync(Encoding.Latin1.GetBytes(request.ToString()));
        using var reader = new StreamReader(stream, Encoding.Latin1);
        var response = await reader.ReadToEndAsync();
        var status = int.Parse(response.Split(' ')[1]);
        var head = response[..response.IndexOf("\r\n\r\n", StringComparison.Ordinal)];
        var contentType = head.Split("\r\n").FirstOrDefault(l => l.StartsWith("Content-Type:", StringComparison.OrdinalIgnoreCase))?[13..].Trim().Split(';')[0];
        return (status, contentType, response[(head.Length + 4)..]);
    }
}
