using System.Net;
using System.Net.Http.Json;
using System.Text;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Tests.Infrastructure;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace MetaCompute.Api.Tests;

public sealed class ErrorTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    [Fact]
    public async Task An_unknown_route_is_a_404_problem()
    {
        using var client = api.OperatorClient();
        var response = await client.GetAsync("/v1/no-such-thing");
        await response.AssertProblemAsync(HttpStatusCode.NotFound, Problems.NotFoundType);
    }

    [Fact]
    public async Task An_unknown_pool_is_a_404_problem_naming_it()
    {
        using var client = api.OperatorClient();
        var body = await (await client.GetAsync("/v1/pools/mars-1-h100")).AssertProblemAsync(HttpStatusCode.NotFound, Problems.NotFoundType);
        Assert.Contains("mars-1-h100", body.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task A_wrong_method_is_a_405_problem()
    {
        using var client = api.OperatorClient();
        var response = await client.DeleteAsync("/v1/pools");
        await response.AssertProblemAsync(HttpStatusCode.MethodNotAllowed, Problems.MethodNotAllowedType);
    }

    [Fact]
    public async Task A_body_that_is_not_json_is_a_415_problem()
    {
        using var client = api.OperatorClient();
        var response = await client.PostAsync("/v1/admin/tenants", new StringContent("name=x", Encoding.UTF8, "text/plain"));
        await response.AssertProblemAsync(HttpStatusCode.UnsupportedMediaType, Problems.UnsupportedMediaTypeType);
    }

    [Fact]
    public async Task An_oversize_body_is_a_413_problem_and_creates_nothing()
    {
        using var client = api.OperatorClient();
        var name = new string('a', (int)RequestLimits.MaxBodyBytes);
        var response = await client.PostAsJsonAsync("/v1/admin/tenants", new { name });
        await response.AssertProblemAsync(HttpStatusCode.RequestEntityTooLarge, Problems.PayloadTooLargeType);
        Assert.Equal(0, await api.WithDbAsync(db => Task.FromResult(db.Tenants.Count(t => t.Name == name))));
    }

    [Fact]
    public async Task Malformed_json_is_a_400_problem_saying_where_it_broke()
    {
        using var client = api.OperatorClient();
        var response = await client.PostAsync("/v1/admin/tenants", new StringContent("{\"name\": \"ok\", \"kind\": ", Encoding.UTF8, "application/json"));
        var body = await response.AssertProblemAsync(HttpStatusCode.BadRequest, Problems.MalformedRequestType);
        Assert.Contains("line 1", body.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task A_wrongly_typed_field_is_a_400_problem_naming_the_field()
    {
        using var client = api.OperatorClient();
        var response = await client.PostAsync("/v1/admin/tenants", new StringContent("{\"name\": 42}", Encoding.UTF8, "application/json"));
        var body = await response.AssertProblemAsync(HttpStatusCode.BadRequest, Problems.MalformedRequestType);
        Assert.Contains("$.name", body.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Validation_failures_list_each_field()
    {
        using var client = api.OperatorClient();
        var response = await client.PostAsJsonAsync("/v1/admin/tenants", new { name = "Not A Slug!" });
        var body = await response.AssertProblemAsync(HttpStatusCode.BadRequest, Problems.ValidationFailedType);
        Assert.True(body.GetProperty("errors").TryGetProperty("name", out _));

        var query = await client.GetAsync("/v1/admin/nodes?limit=0&pageToken=garbage");
        var errors = (await query.AssertProblemAsync(HttpStatusCode.BadRequest, Problems.ValidationFailedType)).GetProperty("errors");
        Assert.True(errors.TryGetProperty("limit", out _));
        Assert.True(errors.TryGetProperty("pageToken", out _));
        // Messages name the field as the client sent it, not as a C# property split into words.
        Assert.StartsWith("'limit'", errors.GetProperty("limit")[0].GetString());
    }

    [Fact]
    public async Task A_taken_tenant_name_is_a_409_problem_not_a_500()
    {
        var tenant = await api.CreateTenantAsync();
        using var client = api.OperatorClient();
        var response = await client.PostAsJsonAsync("/v1/admin/tenants", new { name = tenant.Name });
        await response.AssertProblemAsync(HttpStatusCode.Conflict, Problems.ConflictType);
    }

    public static TheoryData<string, int, string> ExceptionMappings => new()
    {
        { "exclusion", 409, Problems.ConflictType },
        { "unique", 409, Problems.ConflictType },
        { "serialization", 503, Problems.TemporarilyUnavailableType },
        { "deadlock", 503, Problems.TemporarilyUnavailableType },
        { "admin-shutdown", 503, Problems.TemporarilyUnavailableType },
        { "starting-up", 503, Problems.TemporarilyUnavailableType },
        { "connection-lost", 503, Problems.TemporarilyUnavailableType },
        { "read-only-standby", 503, Problems.TemporarilyUnavailableType },
        { "syntax", 500, Problems.InternalErrorType },
        { "unexpected", 500, Problems.InternalErrorType },
    };

    [Theory]
    [MemberData(nameof(ExceptionMappings))]
    public async Task The_exception_handler_maps_each_kind_of_failure(string kind, int status, string type)
    {
        Exception exception = kind switch
        {
            "exclusion" => new PostgresException("conflicting key value violates exclusion constraint", "ERROR", "ERROR", PostgresErrorCodes.ExclusionViolation),
            "unique" => new PostgresException("duplicate key", "ERROR", "ERROR", PostgresErrorCodes.UniqueViolation),
            "serialization" => new PostgresException("could not serialize", "ERROR", "ERROR", PostgresErrorCodes.SerializationFailure),
            "deadlock" => new PostgresException("deadlock detected", "ERROR", "ERROR", PostgresErrorCodes.DeadlockDetected),
            "admin-shutdown" => new PostgresException("terminating connection due to administrator command", "FATAL", "FATAL",
                PostgresErrorCodes.AdminShutdown),
            "starting-up" => new PostgresException("the database system is starting up", "FATAL", "FATAL", PostgresErrorCodes.CannotConnectNow),
            "connection-lost" => new InvalidOperationException("wrapped",
                new NpgsqlException("Exception while reading from stream", new EndOfStreamException())),
            "read-only-standby" => new PostgresException("cannot execute INSERT in a read-only transaction", "ERROR", "ERROR",
                PostgresErrorCodes.ReadOnlySqlTransaction),
            "syntax" => new PostgresException("syntax error at or near \"secret\"", "ERROR", "ERROR", PostgresErrorCodes.SyntaxError),
            _ => new InvalidOperationException("secret internal detail at /srv/app"),
        };
        var handler = api.Services.GetServices<IExceptionHandler>().OfType<ProblemExceptionHandler>().Single();
        var context = new DefaultHttpContext { RequestServices = api.Services };
        context.Response.Body = new MemoryStream();

        Assert.True(await handler.TryHandleAsync(context, exception, CancellationToken.None));

        Assert.Equal(status, context.Response.StatusCode);
        context.Response.Body.Position = 0;
        var body = await new StreamReader(context.Response.Body).ReadToEndAsync();
        Assert.Contains(type, body);
        Assert.DoesNotContain("secret", body);
        Assert.DoesNotContain("/srv/app", body);
        if (status == 503)
        {
            Assert.Equal("1", context.Response.Headers.RetryAfter.ToString());
        }
    }
}
