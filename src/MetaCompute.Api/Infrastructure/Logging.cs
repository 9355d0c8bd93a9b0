using System.Diagnostics;
using MetaCompute.Api.Auth;
using Serilog;
using Serilog.Events;
using Serilog.Formatting.Compact;

namespace MetaCompute.Api.Infrastructure;

public static class Logging
{
    /// <summary>
    /// Serilog through <c>AddSerilog</c> (not a static bootstrap logger, which several test hosts in one process would
    /// fight over). Human-readable in Development, compact JSON elsewhere.
    /// </summary>
    public static WebApplicationBuilder AddMetaComputeLogging(this WebApplicationBuilder builder)
    {
        var development = builder.Environment.IsDevelopment();
        builder.Services.AddSerilog((services, logger) =>
        {
            logger.ReadFrom.Configuration(builder.Configuration)
                .MinimumLevel.Override("Microsoft.AspNetCore", LogEventLevel.Warning)
                .MinimumLevel.Override("Microsoft.EntityFrameworkCore", LogEventLevel.Warning)
                .Enrich.FromLogContext();
            if (development)
            {
                logger.WriteTo.Console(outputTemplate: "[{Timestamp:HH:mm:ss} {Level:u3}] {Message:lj} {Properties:j}{NewLine}{Exception}");
            }
            else
            {
                logger.WriteTo.Console(new CompactJsonFormatter());
            }
        });
        return builder;
    }

    /// <summary>One line per request with the trace id and the key's prefix; never the key, the query string or the body.</summary>
    public static IApplicationBuilder UseMetaComputeRequestLogging(this IApplicationBuilder app) =>
        app.UseSerilogRequestLogging(options =>
        {
            options.MessageTemplate = "HTTP {RequestMethod} {RequestPath} answered {StatusCode} in {Elapsed:0.0} ms";
            options.EnrichDiagnosticContext = (diagnostics, http) =>
            {
                diagnostics.Set("TraceId", Activity.Current?.TraceId.ToString() ?? http.TraceIdentifier);
                if (http.User.FindFirst(CallerClaims.KeyPrefix)?.Value is { } prefix)
                {
                    diagnostics.Set("ApiKeyPrefix", prefix);
                }
            };
        });
}
