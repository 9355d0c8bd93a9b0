using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace MetaCompute.Api.Infrastructure;

public static class OpenApiSetup
{
    public const string BearerScheme = "bearer";

    public static IServiceCollection AddMetaComputeOpenApi(this IServiceCollection services) =>
        services.AddOpenApi(options =>
        {
            options.AddDocumentTransformer((document, _, _) =>
            {
                document.Info = new OpenApiInfo
                {
                    Title = "MetaCompute API",
                    Version = "v1",
                    Description = "Reserve blocks of GPUs from a hyperscaler's surplus capacity: browse pools and offerings, " +
                                  "book reservations, and (operators) manage tenants, keys and the fleet.",
                    Contact = new OpenApiContact { Name = "MetaCompute", Url = new Uri("https://metacompute.dev") },
                };
                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
                document.Components.SecuritySchemes[BearerScheme] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.Http,
                    Scheme = "bearer",
                    Description = "An API key: `Authorization: Bearer <api key>`.",
                };
                // The service is reached at whatever address it is deployed behind; a client is given its base address.
                document.Servers = [];
                document.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(BearerScheme, document)] = [] }];
                return Task.CompletedTask;
            });
            OpenApiContract.Apply(options);
        });
}
