using System.Net;
using System.Text.Json;
using MetaCompute.Api.Tests.Infrastructure;

namespace MetaCompute.Api.Tests;

public sealed class HealthAndOpenApiTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    [Theory]
    [InlineData("/health/live")]
    [InlineData("/health/ready")]
    public async Task Health_answers_without_a_key(string path)
    {
        using var client = api.ClientWithKey(null);
        var response = await client.GetAsync(path);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("Healthy", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task The_openapi_document_is_3_1_with_ids_summaries_errors_and_security()
    {
        using var client = api.ClientWithKey(null);
        var text = await client.GetStringAsync("/openapi/v1.json");
        // .ci/run lints the served document with spectral.
        if (Environment.GetEnvironmentVariable("METACOMPUTE_OPENAPI_OUT") is { Length: > 0 } outPath)
        {
            await File.WriteAllTextAsync(outPath, text);
        }

        var document = JsonDocument.Parse(text).RootElement;

        Assert.StartsWith("3.1", document.GetProperty("openapi").GetString());
        Assert.Equal("http", document.GetProperty("components").GetProperty("securitySchemes").GetProperty("bearer").GetProperty("type").GetString());
        Assert.True(document.GetProperty("security").GetArrayLength() > 0);

        var operations = document.GetProperty("paths").EnumerateObject()
            .SelectMany(path => path.Value.EnumerateObject().Select(op => (Path: path.Name, Method: op.Name, Operation: op.Value)))
            .ToList();
        Assert.Contains(operations, o => o.Path == "/v1/pools/{poolId}");
        Assert.All(operations, o =>
        {
            Assert.False(string.IsNullOrEmpty(o.Operation.GetProperty("operationId").GetString()), $"{o.Method} {o.Path} has no operationId");
            Assert.False(string.IsNullOrEmpty(o.Operation.GetProperty("summary").GetString()), $"{o.Method} {o.Path} has no summary");
            Assert.True(o.Operation.GetProperty("responses").TryGetProperty("401", out _), $"{o.Method} {o.Path} documents no 401");
        });
        var getPool = operations.Single(o => o.Path == "/v1/pools/{poolId}").Operation;
        Assert.True(getPool.GetProperty("responses").TryGetProperty("404", out _));
        Assert.Equal(operations.Count, operations.Select(o => o.Operation.GetProperty("operationId").GetString()).Distinct().Count());
    }

    [Fact]
    public async Task The_api_reference_is_served_at_docs()
    {
        using var client = api.ClientWithKey(null);
        var html = await client.GetStringAsync("/docs/v1");
        Assert.Contains("MetaCompute API", html);
    }
}
